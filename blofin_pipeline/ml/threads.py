"""The native threads (OpenMP, BLAS) of the model libraries, capped in one place.

threadpoolctl limits only the runtimes loaded when its block starts. scikit-learn and
LightGBM each bring their own OpenMP, loaded on their first import, which the ML code does
lazily: a limit entered before that import limits nothing, and the fits then run on every
core with OpenMP threads that spin-wait. Measured on 2 cores, 4 symbols trained in one
process: 22.4 CPU s in 19.6 s wall uncapped, 9.0 CPU s in 9.1 s capped at one thread.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def native_threads(n: int) -> Iterator[None]:
    """Within the block, at most ``n`` OpenMP and BLAS threads in every loaded runtime,
    the model libraries' own included (they are imported first)."""
    import lightgbm  # noqa: F401  (loads its OpenMP runtime)
    import sklearn.ensemble  # noqa: F401  (loads scikit-learn's OpenMP runtime)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=n):
        yield
