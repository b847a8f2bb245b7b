"""Keep the best strategies, models and ensembles; archive the rest with a reason; the audit."""

from blofin_pipeline.ranking.ranker import leaderboard, rank

__all__ = ["leaderboard", "rank"]
