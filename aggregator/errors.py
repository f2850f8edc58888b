"""Errors raised by the aggregation maths."""

from __future__ import annotations

from market.errors import FedMarketError


class AggregationError(FedMarketError):
    """Inputs to an aggregation rule are malformed or exceed its exactness bounds."""
