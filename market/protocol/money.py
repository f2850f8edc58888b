"""PROTOCOL §7's split of a posted round's budget over its slots, as the contract computes it (pure, exact).

One implementation for every Python party that mirrors FedMarket._settle: the eval's pay, the adversary bench's
bounds and the test harness (tests/test_marketplace_invariants.py keeps its own, independent ledger).
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

from market.protocol.constants import FEW_ACCEPTED_DIVISOR


def few_accepted(n: int) -> int:
    """The most accepted slots, of `n` accepted and excluded, at which §7 pays the excluded too."""
    return max(1, n // FEW_ACCEPTED_DIVISOR)


def pays_equally(flags: Sequence[int]) -> bool:
    """Whether the round pays its accepted (flag 0) and excluded (flag 3) slots equally: some are excluded and at
    most `few_accepted(N)` of the N of both are accepted (what a v aimed against the honest updates gives)."""
    accepted, excluded = sum(f == 0 for f in flags), sum(f == 3 for f in flags)
    return excluded > 0 and accepted <= few_accepted(accepted + excluded)


def round_weights(flags: Sequence[int], scores: Sequence[int]) -> list[int]:
    """Each slot's weight in the split of a posted round (all 0: the round spends nothing).

    When `pays_equally`: 1 for each accepted (flag 0) and excluded (flag 3) slot. Otherwise the accepted by
    max(score, 0), or 1 each when no score is positive.
    """
    if pays_equally(flags):
        return [int(f in (0, 3)) for f in flags]
    accepted = [f == 0 for f in flags]
    weights = [max(int(s), 0) if ok else 0 for s, ok in zip(scores, accepted, strict=True)]
    return weights if any(weights) else [int(ok) for ok in accepted]


def weight_shares(weights: Sequence[int]) -> list[Fraction]:
    """Each slot's exact share of a round budget split by `weights` (all 0 when they sum to 0)."""
    total = sum(weights)
    return [Fraction(w, total) if total else Fraction(0) for w in weights]
