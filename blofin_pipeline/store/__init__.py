"""The data database: the connection and migrations (`connection`) and one repository
module per aggregate, the only code that runs SQL. Every statement is a file in
``include/sql/queries/<aggregate>_<what>.sql``, loaded by name.

- `candles`: candles and the gaps found in them
- `registry`: strategy versions and the research trials behind the deflated Sharpe ratio
- `results`: strategy scores, ML models and ensembles
- `rankings`: the ranking audit log
- `knowledge`: the knowledge base / change log
- `runs`: the step log
- `reports`: the daily reports
- `usage`: the LLM usage ledger and the daily LLM budget's spend
- `forward`: the forward record, and the promotions and backtests it reads
- `signals`: the day's target positions of the kept strategies

Repositories take a `Store` and return plain rows or values; the rules stay in the
domain packages above.
"""
from __future__ import annotations

from blofin_pipeline.store.connection import (
    Store,
    open_store,
    to_json,
    utc_now,
)

__all__ = ["Store", "open_store", "to_json", "utc_now"]
