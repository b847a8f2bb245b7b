"""The data database: connection and migrations (`connection`), one repository module per
aggregate, every statement in ``include/sql``."""
from __future__ import annotations

from blofin_pipeline.store.connection import (
    Store,
    load_sql,
    open_store,
    to_json,
    utc_now,
)

__all__ = ["Store", "load_sql", "open_store", "to_json", "utc_now"]
