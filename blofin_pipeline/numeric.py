"""Small numeric helpers shared by every layer: finite numbers, means of the finite ones."""
from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any


def finite_or_none(value: Any) -> float | None:
    """A finite float, or None for NULL, NaN, inf, booleans and non-numbers."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def is_finite(value: Any) -> bool:
    return finite_or_none(value) is not None


def finite_or(value: Any, default: float) -> float:
    number = finite_or_none(value)
    return default if number is None else number


def mean_of_finite(values: Iterable[Any]) -> float | None:
    """Mean of the finite values, None when there is none."""
    numbers = [v for v in (finite_or_none(x) for x in values) if v is not None]
    return sum(numbers) / len(numbers) if numbers else None
