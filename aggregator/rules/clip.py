"""The median cap of the contribution scores (PROTOCOL §3): every accepted a_i is capped at the median of
the accepted a's before §3's first-order Shapley formula, so that a trainer who knows v in advance and
tilts its update towards it cannot outscore the accepted majority (issue 12; `fedmarket eval`'s
`sybil_v_share` measures it).

Exact integers, as the circuit computes them. `A` is the accepted set, `n = |A|`; `med` is the
a of rank `n // 2` (0-based) by the key `(a_i, i)` (the upper median; equal values give the same
`med` whichever index wins the tie); `cap = max(med, (c_pct * med) // 100)` with `c_pct >= 100`
(floor towards minus infinity, as §3; a negative median is its own cap); accepted
`a'_i = min(a_i, cap)`, a rejected `a_i` is kept (its score is 0 anyway). The protocol uses
`c_pct = 100` (`contribution_scores`); other values are for the evaluation's study only.

Bound at `c_pct = 100` (cap = med): the `n - n // 2 = ceil(n / 2)` accepted a's of rank >= n // 2
all become `med`, and every a' is at most `med`. A §3 score is non-decreasing in its own a' (the
numerator `(n - 1) Q a'_i + (n a'_i - S') P` grows with a'_i at fixed S'), so at least
`ceil(n / 2) - 1` other accepted trainers score at least as much as any one trainer, and §7 pays
that trainer at most `1 / ceil(n / 2) <= 2 / n` of the round (also when no score is positive:
`1 / n`). With 10 accepted trainers: at most 0.2, whatever its update.
"""

from __future__ import annotations

from collections.abc import Sequence

from aggregator.rules.shapley import first_order_shapley
from market.errors import AggregationError


def median_cap(a: Sequence[int], accepted: Sequence[bool], c_pct: int = 100) -> int | None:
    """`max(med, (c_pct * med) // 100)` for the upper median `med` of the accepted a's; None when none is accepted."""
    if len(a) != len(accepted):
        raise AggregationError("a and accepted differ in length")
    if c_pct < 100:
        raise AggregationError(f"c_pct must be >= 100, got {c_pct}")
    chosen = sorted((int(x), i) for i, (x, ok) in enumerate(zip(a, accepted)) if ok)
    if not chosen:
        return None
    med = chosen[len(chosen) // 2][0]
    return max(med, (c_pct * med) // 100)


def clip_inner(a: Sequence[int], accepted: Sequence[bool], c_pct: int = 100) -> list[int]:
    """Every accepted `a_i` capped at `median_cap`; the rest unchanged."""
    cap = median_cap(a, accepted, c_pct)
    return [min(int(x), cap) if ok and cap is not None else int(x) for x, ok in zip(a, accepted)]


def clipped_shapley(a: Sequence[int], accepted: Sequence[bool], c_pct: int = 100) -> list[int]:
    """§3's first-order Shapley scores of the capped a's."""
    return first_order_shapley(clip_inner(a, accepted, c_pct), list(accepted))


def contribution_scores(a: Sequence[int], accepted: Sequence[bool]) -> list[int]:
    """The proven scores of PROTOCOL §3: first-order Shapley of the a's capped at their accepted median."""
    return clipped_shapley(a, accepted, 100)
