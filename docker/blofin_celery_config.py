"""Celery settings of the docker-compose deployment (`[celery] celery_config_options`).

Airflow's defaults plus `worker_disable_prefetch`: with a Redis broker a worker otherwise
reserves the next message while all its processes are busy, so long tasks (the mapped
scoring chunks) can queue up behind one worker while another idles.
"""
from __future__ import annotations

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

CELERY_CONFIG = {**DEFAULT_CELERY_CONFIG, "worker_disable_prefetch": True}
