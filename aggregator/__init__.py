"""The aggregator: robust aggregation, contribution scoring and the round-processing node."""
