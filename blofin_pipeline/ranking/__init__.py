"""Keep the best strategies, models and ensembles; archive the rest with a reason; the audit."""

from blofin_pipeline.ranking.leaderboard import leaderboard, leaderboard_view
from blofin_pipeline.ranking.ranker import rank

__all__ = ["leaderboard", "leaderboard_view", "rank"]
