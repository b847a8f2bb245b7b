"""Celery settings of the Celery test, imported by the scheduler and the workers.

- `worker_hostname` (`[core] hostname_callable`): two workers on ONE machine report the
  names airflow-up.sh gives them (BLOFIN_WORKER_NAME=worker1, worker2) as the task
  instances' hostname, as two machines would report theirs.
- `CELERY_CONFIG` (`[celery] celery_config_options`): Airflow's defaults plus
  `worker_disable_prefetch`. With a Redis broker a worker otherwise reserves the next
  message while its only process is busy, so one worker can end up running both scoring
  chunks one after the other while the other worker idles (seen here).
"""
from __future__ import annotations

import os
import socket

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

CELERY_CONFIG = {**DEFAULT_CELERY_CONFIG, "worker_disable_prefetch": True}


def worker_hostname() -> str:
    return os.environ.get("BLOFIN_WORKER_NAME") or socket.getfqdn()
