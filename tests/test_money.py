"""PROTOCOL §7's split of a round (market.protocol.money) on hand-computed vectors."""

from __future__ import annotations

from fractions import Fraction

import pytest

from market.protocol.money import few_accepted, round_weights, weight_shares


@pytest.mark.parametrize(
    ("flags", "scores", "weights"),
    [
        ([0, 0, 0, 0], [4, 3, 2, 1], [4, 3, 2, 1]),  # by score
        ([0, 0, 1, 0], [0, -3, 0, 0], [1, 1, 0, 1]),  # no positive score: the accepted equally
        ([3, 3, 3, 0], [0, 0, 0, 5], [1, 1, 1, 1]),  # 1 accepted of 4: few, all four equally
        ([3, 3, 3, 3], [0, 0, 0, 0], [1, 1, 1, 1]),  # none accepted: the excluded equally
        ([3, 0, 3, 0], [0, 7, 0, 1], [0, 7, 0, 1]),  # 2 of 4 is not few: by score, the excluded nothing
        ([3, 3, 2, 1], [0, 0, 0, 0], [1, 1, 0, 0]),  # rejected and slashed slots are never paid
        ([2, 2, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0]),  # neither accepted nor excluded: nothing spent
        ([3] * 6 + [0, 0], [0] * 6 + [2, 9], [1] * 8),  # 2 of 8 = 8 // 4: few
        ([3] * 5 + [0, 0, 0], [0] * 5 + [2, 9, 1], [0] * 5 + [2, 9, 1]),  # 3 of 8: by score
    ],
)
def test_round_weights(flags: list[int], scores: list[int], weights: list[int]) -> None:
    assert round_weights(flags, scores) == weights


def test_few_accepted_is_a_quarter_and_at_least_one() -> None:
    assert [few_accepted(n) for n in (1, 3, 4, 7, 8, 10, 12, 16)] == [1, 1, 1, 1, 2, 2, 3, 4]


def test_weight_shares_are_exact() -> None:
    assert weight_shares([4, 3, 2, 1]) == [Fraction(2, 5), Fraction(3, 10), Fraction(1, 5), Fraction(1, 10)]
    assert weight_shares([0, 0]) == [0, 0]
