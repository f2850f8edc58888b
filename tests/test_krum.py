"""Multi-Krum (PROTOCOL §3) on hand-computed vectors."""

from __future__ import annotations

import pytest
import torch

from aggregator.rules.distances import pairwise_sq_distances
from aggregator.rules.krum import multi_krum
from market.errors import AggregationError

# Five 1-D points 0, 1, 2, 3, 10: squared distances are (x - y)**2.
POINTS = torch.tensor([[0], [1], [2], [3], [10]], dtype=torch.int64)


def dist() -> torch.Tensor:
    return pairwise_sq_distances(POINTS)


def test_plain_multi_krum_by_hand() -> None:
    r = multi_krum(dist(), f=1, m=0, tau_pct=0)
    # k = min(4, 5 - 1 - 2) = 2: point 0 -> 1 + 4, point 1 -> 1 + 1, point 4 -> 49 + 64.
    assert r.k == 2 and r.krum_scores == [5, 2, 2, 5, 113]
    assert r.m_eff == 4 and r.order == [1, 2, 0, 3, 4] and r.s_ref == 5
    assert r.selected == [True, True, True, True, False]
    assert r.outlier == [False, False, False, False, True]
    assert r.accepted == [True, True, True, True, False]


def test_tau_threshold_is_strict_and_relative_to_s_ref() -> None:
    # 100 * 113 = 11300: above 20 * 5 * 100 = 10000, not above 25 * 5 * 100 = 12500.
    assert multi_krum(dist(), 1, 0, 2000).outlier[4] is True
    assert multi_krum(dist(), 1, 0, 2500).outlier[4] is False


def test_ties_broken_by_index() -> None:
    # m = 1: points 1 and 2 tie at 2, index 1 wins; s_ref = 2.
    r = multi_krum(dist(), 1, 1, 0)
    assert r.selected == [False, True, False, False, False]
    assert r.outlier == [True, False, True, True, True]
    # 100 * 5 = 500 is not > 250 * 2: points 0 and 3 stay; point 2 (krum 2) stays.
    assert multi_krum(dist(), 1, 1, 250).outlier == [False, False, False, False, True]


def test_small_and_empty_inputs() -> None:
    two = pairwise_sq_distances(torch.tensor([[0], [5]], dtype=torch.int64))
    r = multi_krum(two, f=3, m=0, tau_pct=0)
    assert r.k == 0 and r.krum_scores == [0, 0] and r.m_eff == 1 and r.outlier == [False, True]
    assert multi_krum(two, 3, 0, 150).outlier == [False, False]
    empty = multi_krum(torch.zeros((0, 0), dtype=torch.int64), 1, 0, 0)
    assert empty.selected == [] and empty.m_eff == 0
    assert multi_krum(dist(), 0, 9, 0).m_eff == 5


def test_rejects_bad_inputs() -> None:
    with pytest.raises(AggregationError):
        multi_krum(dist().to(torch.float64), 1, 0, 0)
    with pytest.raises(AggregationError):
        multi_krum(dist(), -1, 0, 0)


def test_krum_sums_do_not_overflow() -> None:
    big = torch.full((3, 3), 2**62, dtype=torch.int64).fill_diagonal_(0)
    assert multi_krum(big, f=0, m=0, tau_pct=0).krum_scores == [2**62] * 3
