"""The model libraries' native threads are capped, their own OpenMP runtimes included.

threadpoolctl limits only runtimes already loaded, and scikit-learn and LightGBM load
theirs on first import (done lazily by the ML code): a fresh interpreter shows whether
`native_threads` caps them anyway (uncapped, HistGradientBoosting's OpenMP threads spun
on every core: 2.5x the CPU of a capped run)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json
from threadpoolctl import threadpool_info
from blofin_pipeline.ml.threads import native_threads

with native_threads(1):
    inside = threadpool_info()
print(json.dumps({"inside": inside, "after": threadpool_info()}))
"""


def test_native_threads_caps_the_runtimes_the_libraries_load_themselves():
    if (os.cpu_count() or 1) < 2:
        pytest.skip("one core: a cap of one thread is the default, nothing to tell apart")
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=True)
    seen = json.loads(done.stdout)
    inside = [(lib["internal_api"], lib["num_threads"]) for lib in seen["inside"]]
    openmp = [lib for lib in seen["inside"] if lib["internal_api"] == "openmp"]
    assert len(openmp) >= 1, inside  # the libraries' OpenMP runtimes were loaded before the cap
    assert all(n == 1 for _, n in inside), inside
    # ... and the cap is what made them 1: outside the block they use every core again.
    assert max(lib["num_threads"] for lib in seen["after"] if lib["internal_api"] == "openmp") > 1
