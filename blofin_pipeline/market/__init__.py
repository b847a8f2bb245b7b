"""Market data: BloFin REST client, the synthetic sample market, validation and ingestion."""
