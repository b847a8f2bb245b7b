"""The budget rule, the worst-case cost of a request, and the usage row of a settled attempt."""
from __future__ import annotations

import json

import pytest

from blofin_pipeline.exceptions import ConfigError, LLMBudgetExceeded
from blofin_pipeline.llm.budget import (
    USAGE_FIELDS,
    budget_check,
    build_usage_row,
    check_budget,
    estimate_input_tokens,
    worst_case_usd,
)

REQUEST = {"model": "claude-opus-5", "max_tokens": 10_000, "system": [{"type": "text", "text": "x" * 25_000}],
           "messages": [{"role": "user", "content": "y" * 5_000}]}


def test_check_budget_counts_this_calls_worst_case() -> None:
    check_budget(0.5, 1.0, reserved_usd=0.5)  # exactly the budget: allowed
    check_budget(100.0, None, reserved_usd=5.0)
    with pytest.raises(LLMBudgetExceeded, match=r"before step 'design': \$0\.5000 spent or reserved today, "
                                                r"\+ \$0\.5100 worst case of this call > \$1\.00"):
        check_budget(0.5, 1.0, step="design", reserved_usd=0.51)
    with pytest.raises(LLMBudgetExceeded):
        check_budget(1.0, 1.0)  # spent, even with nothing reserved
    with pytest.raises(ConfigError, match="budget"):
        check_budget(0.0, -1.0)
    check = budget_check(1.0, 0.6, step="tune")
    check(0.4)
    with pytest.raises(LLMBudgetExceeded, match="'tune'"):
        check(0.41)


def test_worst_case_is_max_output_plus_every_input_token_at_the_dearest_rate() -> None:
    tokens = estimate_input_tokens(REQUEST)
    assert tokens >= 30_000 / 4  # above any real tokenizer's count for this text
    expected = (tokens * 10.0 + 10_000 * 25.0) / 1e6  # opus-5: 1h cache write $10, output $25
    assert worst_case_usd(REQUEST) == pytest.approx(expected)
    assert worst_case_usd(REQUEST, price_factor=0.5) == pytest.approx(expected / 2)
    real = {"input_tokens": 30_000 // 4, "output_tokens": 10_000}
    assert build_usage_row(step="design", model="claude-opus-5", usage=real, latency_ms=0, request_id=None,
                           status="ok")["usd"] < worst_case_usd(REQUEST)


def test_usage_row() -> None:
    usage = {"input_tokens": 1000, "output_tokens": 2000, "cache_creation_input_tokens": 10_000,
             "cache_read_input_tokens": 50_000, "service_tier": "standard"}
    row = build_usage_row(step="design", model="claude-opus-5", usage=usage, latency_ms=1234.6,
                          request_id="req_1", status="ok", http_retries=2)
    assert tuple(row) == USAGE_FIELDS
    assert row["usd"] == pytest.approx((1000 * 5 + 2000 * 25 + 10_000 * 6.25 + 50_000 * 0.5) / 1e6)
    assert row["latency_ms"] == 1235 and row["request_id"] == "req_1" and row["http_retries"] == 2
    assert row["cache_creation_tokens"] == 10_000 and row["cache_read_tokens"] == 50_000
    json.dumps(row)  # storable as is
    batch = build_usage_row(step="design", model="claude-opus-5", usage=usage, latency_ms=0, request_id=None,
                            status="ok", price_factor=0.5)
    assert batch["usd"] == pytest.approx(row["usd"] / 2)
    no_cache_discount = build_usage_row(step="design", model="claude-opus-5", usage=usage, latency_ms=0,
                                        request_id=None, status="ok", price_factor=0.5, cache_factor=1.0)
    assert no_cache_discount["usd"] == pytest.approx((500 * 5 + 1000 * 25 + 10_000 * 6.25 + 50_000 * 0.5) / 1e6)
    failed = build_usage_row(step="tune", model="claude-sonnet-5", usage={}, latency_ms=0, request_id=None,
                             status="error", error="x" * 900)
    assert failed["usd"] == 0.0 and failed["input_tokens"] == 0 and len(failed["error"]) == 500
    with pytest.raises(ConfigError, match="status"):
        build_usage_row(step="tune", model="claude-sonnet-5", usage={}, latency_ms=0, request_id=None,
                        status="reserved")
