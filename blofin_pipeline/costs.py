"""Trading costs, defined once: what every backtest, tune and ML label charges."""
from __future__ import annotations

from dataclasses import dataclass

DEFAULT_FEE = 0.0006       # BloFin taker fee, 0.06 % of the traded notional
DEFAULT_SLIPPAGE = 0.0001  # per unit of position change


@dataclass(frozen=True)
class Costs:
    """Fee and slippage per unit of position change, and the bar size they apply at."""

    fee: float = DEFAULT_FEE
    slippage: float = DEFAULT_SLIPPAGE
    timeframe: str | None = None

    @property
    def round_trip(self) -> float:
        """Cost of going in and out once: the least a trade must earn."""
        return 2 * (self.fee + self.slippage)
