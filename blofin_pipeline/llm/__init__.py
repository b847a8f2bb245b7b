"""The LLM layer: model routing and prices, reply schemas and per-call tools, the day's
shared prompt prefix, prompts, parsing, budget, batch mode, and the structured-call policy.

No Airflow and no network here: the hook in `plugins/blofin_llm_hook.py` transports the
requests (`MessageSender`, `BatchTransport`); `StructuredCaller` builds them, reserves
their worst case against the budget, validates the replies and settles a usage row per
attempt in the ledger it is given.
"""
from __future__ import annotations

from blofin_pipeline.llm.batch import BatchAnswers, BatchMode, wait_for_batch
from blofin_pipeline.llm.budget import (
    USAGE_FIELDS,
    UsageLedger,
    build_usage_row,
    check_budget,
    worst_case_usd,
)
from blofin_pipeline.llm.caller import (
    BatchTransport,
    LLMCaller,
    LLMConnection,
    MessageSender,
)
from blofin_pipeline.llm.models import (
    DEFAULT_MODELS,
    PRICES,
    STEPS,
    ModelPrice,
    cost_usd,
    price_for,
    resolve_model,
    supports_forced_tool_use,
)
from blofin_pipeline.llm.parsing import extract_payload, parse_reply, validate_reply
from blofin_pipeline.llm.policy import StructuredCaller, build_request
from blofin_pipeline.llm.prefix import STRATEGY_CONTRACT, DayPrefix, build_day_prefix
from blofin_pipeline.llm.prompts import (
    Prompt,
    build_design_prompt,
    build_review_prompt,
    build_tune_prompt,
    validation_feedback,
)
from blofin_pipeline.llm.schemas import (
    CATEGORIES,
    DesignedStrategy,
    DesignReply,
    ReviewReply,
    TuneProposal,
    TuneReply,
    json_schema,
    tool_definition,
    tool_name,
)
from blofin_pipeline.llm.settings import BatchSettings, LLMSettings
from blofin_pipeline.llm.tools import day_tools, design_tool, review_tool, tune_tool

__all__ = [
    "CATEGORIES", "DEFAULT_MODELS", "PRICES", "STEPS", "STRATEGY_CONTRACT", "USAGE_FIELDS", "BatchAnswers",
    "BatchMode", "BatchSettings", "BatchTransport", "DayPrefix", "DesignReply", "DesignedStrategy", "LLMCaller",
    "LLMConnection", "LLMSettings", "MessageSender", "ModelPrice", "Prompt", "ReviewReply", "StructuredCaller",
    "TuneProposal", "TuneReply", "UsageLedger", "build_day_prefix", "build_design_prompt", "build_request",
    "build_review_prompt", "build_tune_prompt", "build_usage_row", "check_budget", "cost_usd", "day_tools",
    "design_tool", "extract_payload", "json_schema", "parse_reply", "price_for", "resolve_model", "review_tool",
    "supports_forced_tool_use", "tool_definition", "tool_name", "tune_tool", "validate_reply",
    "validation_feedback", "wait_for_batch", "worst_case_usd",
]
