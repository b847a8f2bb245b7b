"""`[core] hostname_callable` for the Celery test: two workers on ONE machine report the
names airflow-up.sh gives them (BLOFIN_WORKER_NAME=worker1, worker2) as the task
instances' hostname, as two machines would report theirs."""
from __future__ import annotations

import os
import socket


def worker_hostname() -> str:
    return os.environ.get("BLOFIN_WORKER_NAME") or socket.getfqdn()
