"""bench/dag_scale.py's arithmetic: the growth exponent and the per-task usage it reports."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("dag_scale", ROOT / "bench" / "dag_scale.py")
dag_scale = importlib.util.module_from_spec(_spec)
sys.modules["dag_scale"] = dag_scale  # dataclasses look their module up
_spec.loader.exec_module(dag_scale)


def _result(n: int, step_s: float, cpu_s: float) -> dag_scale.RunResult:
    tis = [{"task_id": "a", "map_index": -1, "duration": step_s}]
    return dag_scale.RunResult(n_symbols=n, wall_s=step_s, tis=tis, rss_kb={("a", -1): 1}, cpu_s={("a", -1): cpu_s},
                               load=(0.0, 0.0))


def test_growth_exponent_is_the_log_log_slope_over_10_to_50_symbols_only() -> None:
    # step time ~ n^1.3 inside [10, 50]; the 3-symbol point (far off the curve) is left out
    results = [_result(3, 1000.0, 1.0)] + [_result(n, 2.0 * n ** 1.3, 5.0 * n) for n in (10, 30, 50)]
    slope, sizes = dag_scale.growth_exponent(results)
    assert slope == pytest.approx(1.3)
    assert sizes == [10, 30, 50]
    assert dag_scale.growth_exponent(results, cpu=True)[0] == pytest.approx(1.0)
    assert dag_scale.growth_exponent(results[:2]) is None  # one size in range: no slope


def test_usage_keeps_the_peak_rss_over_tries_and_sums_their_cpu_for_the_run_only(tmp_path: Path) -> None:
    rows = [{"run_id": "r1", "task_id": "score", "map_index": 0, "self_max_rss_kb": 300, "children_max_rss_kb": 900,
             "cpu_s": 2.0},
            {"run_id": "r1", "task_id": "score", "map_index": 0, "self_max_rss_kb": 500, "children_max_rss_kb": 10,
             "cpu_s": 3.0},
            {"run_id": "r1", "task_id": "score", "map_index": 1, "self_max_rss_kb": 400, "children_max_rss_kb": 0,
             "cpu_s": 1.0},
            {"run_id": "other", "task_id": "score", "map_index": 0, "self_max_rss_kb": 9999, "children_max_rss_kb": 0,
             "cpu_s": 99.0}]
    path = tmp_path / "rss.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    rss, cpu = dag_scale.read_usage(path, "r1")
    assert rss == {("score", 0): 900, ("score", 1): 400}
    assert cpu == {("score", 0): 5.0, ("score", 1): 1.0}


def test_symbols_beyond_the_named_ones_are_distinct_synthetic_names() -> None:
    names = dag_scale.symbols(50)
    assert names[:3] == ["BTC-USDT", "ETH-USDT", "SOL-USDT"]
    assert len(set(names)) == 50 and names[-1] == "SYN50-USDT"


def test_the_wall_time_the_baseline_mode_reads_is_the_one_a_run_prints(capsys) -> None:
    result = dag_scale.RunResult(n_symbols=3, wall_s=41.25, tis=[{"task_id": "a", "map_index": -1, "duration": 1.0,
                                                                  "start_date": "2026-04-10T00:00:00Z"}],
                                 rss_kb={("a", -1): 1024}, cpu_s={("a", -1): 1.0}, load=(0.5, 0.5))
    dag_scale.print_run(result)
    found = dag_scale.WALL_LINE.search(capsys.readouterr().out)
    assert found and float(found.group(1)) == pytest.approx(41.2, abs=0.06)


def test_the_baseline_tree_is_the_old_commit_with_this_harness_and_venv(tmp_path: Path) -> None:
    import subprocess

    known = subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", f"{dag_scale.BASELINE_REV}^{{commit}}"],
                           capture_output=True)
    if known.returncode:
        pytest.skip(f"this clone does not hold {dag_scale.BASELINE_REV} (a shallow clone)")
    tree = dag_scale.baseline_tree(dag_scale.BASELINE_REV, tmp_path)
    try:
        head = subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
        want = subprocess.run(["git", "-C", str(ROOT), "rev-parse", dag_scale.BASELINE_REV], capture_output=True,
                              text=True, check=True)
        assert head.stdout == want.stdout
        assert (tree / ".venv").resolve() == (ROOT / ".venv").resolve()
        for rel in dag_scale.HARNESS:
            assert (tree / rel).read_bytes() == (ROOT / rel).read_bytes()
        listener = (ROOT / "bench" / "rss_plugin" / "blofin_bench_rss.py").read_bytes()
        assert (tree / "plugins" / "blofin_bench_rss.py").read_bytes() == listener
        # the code under test is the old one: ML was one task, not mapped groups
        assert "train_ml_group" not in (tree / "dags" / "blofin_daily.py").read_text()
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], capture_output=True)


def test_baseline_mode_refuses_zero_rounds_before_any_run(capsys) -> None:
    if not dag_scale.AIRFLOW_BIN.exists():
        pytest.skip("no Airflow in this checkout's venv")
    with pytest.raises(SystemExit) as stop:
        dag_scale.main(["--baseline", "--rounds", "0"])
    assert stop.value.code == 2 and "--rounds must be at least 1" in capsys.readouterr().err
