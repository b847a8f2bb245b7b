"""The hostile and broken strategy corpus: each file is rejected for the RIGHT reason.

Every file in corpus/ starts with `# expect: <stage>: <reason text>` (or
`# expect: accepted`) and optionally `# options: timeout=2 memory_mb=512`.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from blofin_pipeline.strategies.checks import check_strategy, check_strategy_file
from blofin_pipeline.strategies.testdata import check_candles

CORPUS = Path(__file__).parent / "corpus"
FILES = sorted(CORPUS.glob("*.py"))


def _header(path: Path) -> tuple[str, dict[str, float]]:
    expect, options = None, {}
    for line in path.read_text().splitlines()[:3]:
        if line.startswith("# expect:"):
            expect = line.removeprefix("# expect:").strip()
        elif line.startswith("# options:"):
            for item in line.removeprefix("# options:").split():
                key, value = item.split("=")
                options[key] = float(value) if "." in value else int(value)
    assert expect, f"{path.name} has no '# expect:' line"
    return expect, options


@pytest.fixture(scope="module")
def candles():
    return check_candles()


def test_corpus_is_complete():
    names = {p.stem for p in FILES}
    assert len(FILES) >= 30
    for required in ("import_os", "import_subprocess", "import_socket", "dunder_import",
                     "getattr_concat", "subclasses_escape", "open_file", "infinite_loop",
                     "memory_bomb", "lookahead_shift", "lookahead_centered",
                     "lookahead_normalise", "nan_output", "wrong_length", "out_of_range",
                     "syntax_error", "two_strategies", "no_strategy", "clean_sma_trend"):
        assert required in names


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_corpus_file_gets_the_right_verdict(path: Path, candles):
    expect, options = _header(path)
    report = check_strategy(
        path.read_text(), candles, origin=path.name,
        timeout=options.get("timeout", 30), cpu_seconds=options.get("cpu_seconds", 30),
        memory_mb=options.get("memory_mb", 1024),
    )
    if expect == "accepted":
        assert report.accepted, report.reasons
        assert report.reasons == []
        assert all(stage["status"] == "passed" for stage in report.stages.values())
        return
    assert not report.accepted
    stage, text = (part.strip() for part in expect.split(":", 1))
    assert any(reason.startswith(f"{stage}: ") and text in reason
               for reason in report.reasons), (expect, report.reasons)
    assert report.stages[stage]["status"] == "failed"
    later = {"static": ["sandbox", "lookahead"], "sandbox": ["lookahead"]}.get(stage, [])
    assert all(report.stages[s]["status"] == "skipped" for s in later)


def test_lookahead_shift_names_the_cut_bar(candles):
    report = check_strategy((CORPUS / "lookahead_shift.py").read_text(), candles)
    look = report.stages["lookahead"]
    # Peeking one bar ahead shows at the cut bar itself, and at the earliest cut checked.
    assert look["first_bad_bar"] == look["cut_bar"] == min(look["checked_bars"])
    assert f"bar {look['first_bad_bar']} ({candles.index[look['first_bad_bar']]})" \
        in report.reasons[0]


def test_lookahead_centred_window_differs_half_a_window_before_the_cut(candles):
    report = check_strategy((CORPUS / "lookahead_centered.py").read_text(), candles)
    look = report.stages["lookahead"]
    # A centred 10-bar window at bar b covers bars b - 5 ... b + 4, so cutting at t
    # leaves bars t - 3 ... t without a full window: t - 3 is the first that differs.
    assert look["first_bad_bar"] == min(look["checked_bars"]) - 3


def test_lookahead_normalisation_differs_early(candles):
    report = check_strategy((CORPUS / "lookahead_normalise.py").read_text(), candles)
    look = report.stages["lookahead"]
    assert look["first_bad_bar"] < min(look["checked_bars"])


def test_check_strategy_file_exit_codes_and_json(tmp_path):
    code, out = check_strategy_file(CORPUS / "clean_sma_trend.py", as_json=True)
    assert code == 0
    import json
    data = json.loads(out)
    assert data["accepted"] is True and data["name"] == "clean_sma_trend"
    assert data["category"] == "trend" and len(data["code_hash"]) == 64
    code, out = check_strategy_file(CORPUS / "import_os.py")
    assert code == 1
    assert "REJECTED" in out and "import of 'os' is not allowed" in out
    code, out = check_strategy_file(tmp_path / "missing.py")
    assert code == 1 and "cannot read" in out


def test_default_check_candles_are_deterministic():
    first, second = check_candles(), check_candles()
    assert first.equals(second)
    assert first.index.tz is not None and first.index.name == "ts"
    assert list(first.columns) == ["open", "high", "low", "close", "volume"]
    assert (first["high"] >= first[["open", "close"]].max(axis=1)).all()
    assert (first["low"] <= first[["open", "close"]].min(axis=1)).all()
    assert (first["low"] > 0).all() and (first["volume"] > 0).all()
