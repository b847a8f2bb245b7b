"""blofin-stack research pipeline: the importable library behind the `blofin_daily` DAG.

This package never imports Airflow; the DAG in `dags/` and the adapters in `plugins/`
call into it.
"""
from __future__ import annotations

__version__ = "0.1.0"
