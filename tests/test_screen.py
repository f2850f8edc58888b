"""The free-rider screens of PROTOCOL §3 (copies, norm floor) on hand-computed vectors."""

from __future__ import annotations

import pytest
import torch

from aggregator.rules.distances import pairwise_sq_distances
from aggregator.rules.round import aggregate_round
from aggregator.rules.screen import below_floor, copies, screened_multi_krum
from market.errors import AggregationError
from market.protocol.manifest import RuleConfig
from market.protocol.quant import QuantSpec

# 10, 20, 30, 40 honest; row 4 repeats row 0; row 5 sends nothing; row 6 is far away.
U = torch.tensor([[10], [20], [30], [40], [10], [0], [400]], dtype=torch.int64)
NSQ = [100, 400, 900, 1600, 100, 0, 160000]


def test_copies_flag_the_later_of_a_close_pair() -> None:
    rows = [[100, 0], [101, 0], [0, 100], [0, 0]]
    dist = pairwise_sq_distances(torch.tensor(rows, dtype=torch.int64)).tolist()
    nsq = [10000, 10201, 10000, 0]
    # dist(0, 1) = 1: 100 * 1 < 5 * 10000, so whichever came second is the copy.
    assert copies(dist, nsq, [0, 1, 2, 3], 5) == [False, True, False, False]
    assert copies(dist, nsq, [1, 0, 2, 3], 5) == [True, False, False, False]
    # A zero update never makes another a copy (nsq 0); dup_pct 0 disables the rule.
    assert copies(dist, nsq, [3, 2, 1, 0], 5) == [True, False, False, False]
    assert copies(dist, nsq, [0, 1, 2, 3], 0) == [False] * 4
    with pytest.raises(AggregationError, match="distinct submission ranks"):
        copies(dist, nsq, [0, 0, 1, 2], 5)


def test_below_floor_against_the_lower_median() -> None:
    # Chosen nsq 100, 5, 50, 7: sorted 5, 7, 50, 100, rank (4 - 1) // 2 = 1 is 7 (index 3).
    med, low = below_floor([100, 5, 50, 7], [True] * 4, 80)
    assert med == 3 and low == [False, True, False, False]  # 500 < 560; 700 is not
    assert below_floor([100, 5, 50, 7], [True, False, True, True], 80) == (2, [False, False, False, True])
    assert below_floor([100, 5, 50, 7], [True] * 4, 0) == (3, [False] * 4)
    assert below_floor([4, 4], [True, True], 100) == (0, [False, False])  # ties broken by index
    assert below_floor([], [], 10) == (None, [])


def test_screened_multi_krum_by_hand() -> None:
    # Row 4 copies row 0. C = rows 0,1,2,3,5,6; median rank 2 by nsq: 0, 100, 400, ... -> row 1.
    # Row 5: 100 * 0 < 10 * 400, low. K = rows 0,1,2,3,6: n0 = 5, f = 1: k = 2, m_eff = 4.
    # krum = 100+400, 100+100, 100+100, 100+400, 129600+136900: row 6 is the Krum outlier.
    r = screened_multi_krum(pairwise_sq_distances(U), NSQ, list(range(7)), 1, 0, 0, 5, 10)
    assert r.copy == [False, False, False, False, True, False, False]
    assert r.median == 1 and r.low == [False, False, False, False, False, True, False]
    assert r.members == [0, 1, 2, 3, 6] and r.krum.krum_scores == [500, 200, 200, 500, 266500]
    assert r.outlier == [False, False, False, False, True, True, True]
    assert r.selected == [True, True, True, True, False, False, False]
    # The submission order decides which of two equal updates is the copy.
    swapped = screened_multi_krum(pairwise_sq_distances(U), NSQ, [4, 1, 2, 3, 0, 5, 6], 1, 0, 0, 5, 10)
    assert swapped.outlier == [True, False, False, False, False, True, True]


def test_aggregate_round_drops_free_riders() -> None:
    spec = QuantSpec()
    v = torch.tensor([1], dtype=torch.int64)
    out = aggregate_round(U, U, v, torch.zeros(1), spec, RuleConfig(f=1, m=0, tau_pct=0, dup_pct=5, floor_pct=10))
    assert out.accepted == [True, True, True, True, False, False, False]
    assert out.scores[4:] == [0, 0, 0]
    assert out.new_global.tolist() == [25 / 4096]
    plain = aggregate_round(U, U, v, torch.zeros(1), spec, RuleConfig(f=1, m=0, tau_pct=0, dup_pct=0, floor_pct=0))
    assert plain.accepted[4] and plain.accepted[5]
