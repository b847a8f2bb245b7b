"""`ingest_candles`: fetch, validate and store the latest candles of every symbol."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from blofin_pipeline.config import RunContext
from blofin_pipeline.market.ingest import ingest, make_source
from blofin_pipeline.steps.runner import step
from blofin_pipeline.store import Store


@step
def ingest_candles(ctx: RunContext, store: Store, client_factory: Callable[[], object] | None = None
                   ) -> dict[str, Any]:
    return ingest(ctx, store, make_source(ctx, client_factory))
