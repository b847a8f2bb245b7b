"""The LLM layer: model routing and prices, reply schemas, prompts, parsing, budget, and
the structured-call policy.

No Airflow and no network here: the hook in `plugins/blofin_llm_hook.py` transports the
requests (`MessageSender`); `StructuredCaller` builds them, validates the replies, keeps
the budget and writes a usage row per call to the ledger it is given.
"""
from __future__ import annotations

from blofin_pipeline.llm.budget import (
    USAGE_FIELDS,
    UsageLedger,
    build_usage_row,
    check_budget,
)
from blofin_pipeline.llm.caller import LLMCaller, LLMConnection, MessageSender
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
from blofin_pipeline.llm.prompts import (
    STRATEGY_CONTRACT,
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
from blofin_pipeline.llm.settings import LLMSettings

__all__ = [
    "CATEGORIES", "DEFAULT_MODELS", "PRICES", "STEPS", "STRATEGY_CONTRACT", "USAGE_FIELDS", "DesignReply",
    "DesignedStrategy", "LLMCaller", "LLMConnection", "LLMSettings", "MessageSender", "ModelPrice", "Prompt",
    "ReviewReply", "StructuredCaller", "TuneProposal", "TuneReply", "UsageLedger", "build_design_prompt",
    "build_request", "build_review_prompt", "build_tune_prompt", "build_usage_row", "check_budget", "cost_usd",
    "extract_payload", "json_schema", "parse_reply", "price_for", "resolve_model", "supports_forced_tool_use",
    "tool_definition", "tool_name", "validate_reply", "validation_feedback",
]
