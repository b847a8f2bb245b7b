"""Pure LLM layer: model routing and prices, reply schemas, prompts, parsing, budget.

No Airflow and no network here: the hook in `plugins/blofin_llm_hook.py` transports the
requests these functions build and hands the replies back to them.
"""
from __future__ import annotations

from blofin_pipeline.llm.budget import USAGE_FIELDS, build_usage_row, check_budget
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
from blofin_pipeline.llm.prompts import (
    PROMPT_BUILDERS,
    STRATEGY_CONTRACT,
    Prompt,
    build_design_prompt,
    build_review_prompt,
    build_summary_prompt,
    build_tune_prompt,
    validation_feedback,
)
from blofin_pipeline.llm.schemas import (
    CATEGORIES,
    REPLY_TYPES,
    DesignedStrategy,
    DesignReply,
    ReviewReply,
    SummaryReply,
    TuneProposal,
    TuneReply,
    json_schema,
    tool_definition,
    tool_name,
)

__all__ = [
    "CATEGORIES", "DEFAULT_MODELS", "PRICES", "PROMPT_BUILDERS", "REPLY_TYPES", "STEPS",
    "STRATEGY_CONTRACT", "USAGE_FIELDS", "DesignReply", "DesignedStrategy", "ModelPrice", "Prompt",
    "ReviewReply", "SummaryReply", "TuneProposal", "TuneReply", "build_design_prompt",
    "build_review_prompt", "build_summary_prompt", "build_tune_prompt", "build_usage_row",
    "check_budget", "cost_usd", "extract_payload", "json_schema", "parse_reply", "price_for",
    "resolve_model", "supports_forced_tool_use", "tool_definition", "tool_name", "validate_reply",
    "validation_feedback",
]
