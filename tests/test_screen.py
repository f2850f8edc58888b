"""The screens of PROTOCOL §3 (copies, norm floor, public span, direction test) and the novelty of the scores, on hand-computed
vectors."""

from __future__ import annotations

import pytest
import torch

from aggregator.rules.distances import pairwise_sq_distances
from aggregator.rules.novelty import novel_inner
from aggregator.rules.round import aggregate_round
from aggregator.rules.screen import (
    RESIDUAL_BITS,
    below_floor,
    copies,
    residual_terms,
    residuals,
    screened_multi_krum,
    span_basis,
)
from market.errors import AggregationError
from market.protocol.manifest import RuleConfig
from market.protocol.quant import QuantSpec

# 10, 20, 30, 40 honest; row 4 repeats row 0; row 5 sends nothing; row 6 is far away.
U = torch.tensor([[10], [20], [30], [40], [10], [0], [400]], dtype=torch.int64)
NSQ = [100, 400, 900, 1600, 100, 0, 160000]
A = [10, 20, 30, 40, 10, 0, 400]  # <v, u_i> for v = [1]


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
    # Row 5: 100 * 0 < 10 * 400, low. K = rows 0,1,2,3,6: n0 = 5; counted on the 7 joined, f = 1:
    # k = min(k(7) = 4, n0 - 1 = 4) = 4 and m_eff = max(1, 5 - (7 - m(7) = 1)) = 4.
    # krum = the sum of all four distances: row 6 (129600 to 152100 from each) is the Krum outlier.
    r = screened_multi_krum(pairwise_sq_distances(U), NSQ, A, list(range(7)), 1, 0, 0, 5, 10)
    assert r.copy == [False, False, False, False, True, False, False]
    assert r.median == 1 and r.low == [False, False, False, False, False, True, False]
    assert r.krum.k == 4 and r.krum.m_eff == 4
    assert r.members == [0, 1, 2, 3, 6] and r.krum.krum_scores == [153500, 145000, 137500, 131000, 563000]
    assert r.outlier == [False, False, False, False, True, True, True]
    assert r.selected == [True, True, True, True, False, False, False]
    assert r.against == [False] * 7  # every member moves along v (the zero update is low, not against)
    assert r.flags == [0, 0, 0, 0, 3, 1, 3]  # low slashed; the copy and the Krum outlier only excluded
    # The submission order decides which of two equal updates is the copy.
    swapped = screened_multi_krum(pairwise_sq_distances(U), NSQ, A, [4, 1, 2, 3, 0, 5, 6], 1, 0, 0, 5, 10)
    assert swapped.outlier == [True, False, False, False, False, True, True]


def test_aggregate_round_drops_free_riders() -> None:
    # U with a second coordinate off v = [1, 0], so that half of each squared norm is off the public span (the
    # public-span screen would exclude every row of the one-dimensional U).
    U2 = torch.cat([U, U], dim=1)
    spec = QuantSpec()
    v = torch.tensor([1, 0], dtype=torch.int64)
    out = aggregate_round(U2, U2, v, torch.zeros(2), spec, RuleConfig(f=1, m=0, tau_pct=0, dup_pct=5, floor_pct=10))
    assert out.accepted == [True, True, True, True, False, False, False]
    assert out.scores[4:] == [0, 0, 0]
    assert out.new_global.tolist() == [25 / 4096, 25 / 4096]
    # In one dimension every update lies along v: the median residual is 0, so the public-span screen flags nobody.
    assert aggregate_round(U, U, v[:1], torch.zeros(1), spec, RuleConfig(f=1, m=0, tau_pct=0)).flags == [0, 0, 0, 0, 3, 1, 3]
    plain = aggregate_round(U2, U2, v, torch.zeros(2), spec, RuleConfig(f=1, m=0, tau_pct=0, dup_pct=0, floor_pct=0))
    assert plain.accepted[4] and not plain.accepted[5]  # without the floor, the zero update fails the direction test
    assert plain.flags[5] == 3


def _span(vecs: list[list[int]], rows: list[list[int]]) -> tuple[list[int], list[list[int]], list[list[int]]]:
    """(nsq, cross, gram) of `rows` against the public vectors (v, s, h), by hand-sized integer loops."""
    dot = lambda x, y: sum(p * q for p, q in zip(x, y))
    return [dot(r, r) for r in rows], [[dot(b, r) for b in vecs] for r in rows], [[dot(b, c) for c in vecs] for b in vecs]


def test_residuals_by_hand() -> None:
    # v = e0, s = e1, h = e2 (the Gram matrix is I): [3, 4, 0, 0] and [3, 0, 4, 0] lie in the span, [0, 0, 0, 5]
    # wholly off it, [3, 0, 0, 4] 16 / 25 off it: floor(2^20 * 16 / 25) = 671088. A zero update counts as wholly off.
    e = [[1 if k == j else 0 for k in range(4)] for j in range(4)]
    zero = [0] * 4
    rows = [[3, 4, 0, 0], [3, 0, 4, 0], [0, 0, 0, 5], [3, 0, 0, 4], zero]
    assert RESIDUAL_BITS == 20
    assert residuals(*_span([e[0], e[1], e[2]], rows)) == [0, 0, 1 << 20, 671088, 1 << 20]
    assert residual_terms(*_span([e[0], e[1], e[2]], rows))[3] == (16, 25)
    # No split step (h = 0), or h within span{v, s}: the span is {v, s}, so [3, 0, 4, 0] is 16 / 25 off it.
    assert residuals(*_span([e[0], e[1], zero], rows)) == [0, 671088, 1 << 20, 671088, 1 << 20]
    assert residuals(*_span([e[0], e[1], [2, -3, 0, 0]], rows)) == [0, 671088, 1 << 20, 671088, 1 << 20]
    # Round 1 (s = 0) or s along v: the span is {v, h}; with h = 0 as well, v's alone.
    for s in (zero, [-2, 0, 0, 0]):
        assert residuals(*_span([e[0], s, e[2]], rows)) == [671088, 0, 1 << 20, 671088, 1 << 20]
        assert residuals(*_span([e[0], s, zero], rows)) == [671088, 671088, 1 << 20, 671088, 1 << 20]
    # A basis that is not orthogonal: v = (1, 0, 0, 0), s = (1, 1, 0, 0), h = (1, 1, 1, 0) span the first three
    # coordinates (Gram determinant 1), so (1, 2, 3, 4) is 16 / 30 off it: floor(2^20 * 16 / 30) = 559240.
    skew = [[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0]]
    assert span_basis(_span(skew, [])[2])[0] == 1
    assert residuals(*_span(skew, [[1, 2, 3, 4]])) == [559240]
    with pytest.raises(AggregationError, match="one squared norm"):
        residuals([25], [[3, 4]], _span([e[0], e[1], e[2]], [])[2])


def test_public_span_screen_excludes_what_v_and_the_step_explain() -> None:
    # Residuals 0.9, 0.8, 0.02 (the public direction resent), 0.7, 0.85 (x 2^20): the lower median of the five is
    # 0.8 (row 1), and 100 * 0.02 < 40 * 0.8, so row 2 is excluded (flag 3, not slashed) and takes no part in
    # Multi-Krum; 0.7 is not below 0.32. With no residuals (the default) the screen is off.
    rows = torch.tensor([[30, 5], [40, -5], [35, 20], [25, 10], [60, 30]], dtype=torch.int64)
    nsq = [int(x) for x in (rows * rows).sum(1).tolist()]
    a = [int(x) for x in rows[:, 0].tolist()]
    res = [int(x * (1 << 20)) for x in (0.9, 0.8, 0.02, 0.7, 0.85)]
    r = screened_multi_krum(pairwise_sq_distances(rows), nsq, a, list(range(5)), 0, 0, 0, 5, 10, residual=res)
    assert r.public == [False, False, True, False, False] and r.public_median == 1
    assert r.members == [0, 1, 3, 4] and r.flags[2] == 3 and r.slashed == [False] * 5
    off = screened_multi_krum(pairwise_sq_distances(rows), nsq, a, list(range(5)), 0, 0, 0, 5, 10)
    assert off.public == [False] * 5 and off.public_median is None and off.members == [0, 1, 2, 3, 4]
    with pytest.raises(AggregationError, match="one residual per update"):
        screened_multi_krum(pairwise_sq_distances(rows), nsq, a, list(range(5)), 0, 0, 0, 5, 10, residual=res[:4])


def test_direction_test_excludes_updates_against_v_before_krum() -> None:
    # v = [1, 0]. Rows 3 and 4 point against v (a = -30, 0): excluded (flag 3), not slashed, and they take no
    # part in Multi-Krum: K = rows 0, 1, 2 (n0 = 3, f = 0, 5 joined: k = min(3, 2) = 2, m_eff = 3), all selected.
    rows = torch.tensor([[30, 5], [40, -5], [35, 20], [-30, 0], [0, 35]], dtype=torch.int64)
    nsq = [925, 1625, 1625, 900, 1225]
    a = [30, 40, 35, -30, 0]
    r = screened_multi_krum(pairwise_sq_distances(rows), nsq, a, list(range(5)), 0, 0, 0, 5, 10)
    assert r.against == [False, False, False, True, True]
    assert r.members == [0, 1, 2] and r.flags == [0, 0, 0, 3, 3]
    with pytest.raises(AggregationError, match="one inner product"):
        screened_multi_krum(pairwise_sq_distances(rows), nsq, a[:4], list(range(5)), 0, 0, 0, 5, 10)


def test_a_trainer_who_keeps_its_update_leaves_k_and_the_selection_as_they_are() -> None:
    # The rows above with f = 1, m = 3. Sent, rows 3 and 4 are against v and excluded: n0 = 3, counted on the
    # 5 joined, k = min(k(5) = 2, 2) = 2 and m_eff = max(1, 3 - (5 - 3)) = 1.
    rows = torch.tensor([[30, 5], [40, -5], [35, 20], [-30, 0], [0, 35]], dtype=torch.int64)
    nsq, a = [925, 1625, 1625, 900, 1225], [30, 40, 35, -30, 0]
    sent = screened_multi_krum(pairwise_sq_distances(rows), nsq, a, list(range(5)), 1, 3, 0, 5, 10)
    assert (sent.krum.k, sent.krum.m_eff) == (2, 1)
    # Kept by their trainers (TrainerNode.decline_against), the same round over the 5 joined decides alike.
    kept = screened_multi_krum(pairwise_sq_distances(rows[:3]), nsq[:3], a[:3], list(range(3)), 1, 3, 0, 5, 10, joined=5)
    assert (kept.krum.k, kept.krum.m_eff) == (2, 1) and kept.flags == sent.flags[:3]
    # Counted on the 3 submissions instead, k would fall to 0 (Multi-Krum selects everything) and m_eff rise to 3.
    few = screened_multi_krum(pairwise_sq_distances(rows[:3]), nsq[:3], a[:3], list(range(3)), 1, 3, 0, 5, 10)
    assert (few.krum.k, few.krum.m_eff) == (0, 3)
    with pytest.raises(AggregationError, match="3 updates from 2 joined"):
        screened_multi_krum(pairwise_sq_distances(rows[:3]), nsq[:3], a[:3], list(range(3)), 1, 3, 0, 5, 10, joined=2)


def test_novelty_scores_only_what_the_previous_step_does_not_explain() -> None:
    # step s = [2, 0]; v = [3, 4]: ss = 4, vs = 6. a'_i = floor((4 a_i - 6 su_i) / 4) = <v_perp, u_i>, v_perp = [0, 4].
    v = torch.tensor([3, 4], dtype=torch.int64)
    s = torch.tensor([2, 0], dtype=torch.int64)
    rows = torch.tensor([[10, 0], [10, 1], [0, -1], [1, 1]], dtype=torch.int64)
    a = [30, 34, -4, 7]
    assert novel_inner(a, rows, v, s) == [0, 4, -4, 4]  # [10, 0] is the step itself: nothing new
    # floors towards minus infinity: s = [3, 1], ss = 10, vs = 13; u = [1, 0]: (10 * 3 - 13 * 3) / 10 = -0.9 -> -1
    assert novel_inner([3], torch.tensor([[1, 0]]), v, torch.tensor([3, 1])) == [-1]
    # round 1 (no previous step): a unchanged
    assert novel_inner(a, rows, v, torch.zeros(2, dtype=torch.int64)) == a
    with pytest.raises(AggregationError, match="int64 like v"):
        novel_inner(a, rows, v, torch.zeros(3, dtype=torch.int64))
    # the screen's <s, u_i> (su = [20, 20, 0, 2]) gives the same novelty without reading U again; a short one is named
    assert novel_inner(a, rows, v, s, [20, 20, 0, 2]) == [0, 4, -4, 4]
    with pytest.raises(AggregationError, match="one <s, u_i> per row"):
        novel_inner(a, rows, v, s, [20, 20, 0])


def test_a_free_rider_resending_the_previous_step_scores_below_every_trainer() -> None:
    # Three trainers move along v = [4, 4, 0] with their own data (the second and third coordinates); the free
    # rider sends twice the previous step s = [5, 0, 0] plus a little noise. Its a = 40 is the largest, its novelty
    # the smallest; and with s known, 1 / 101 of it lies off the span of v and s, against 16 / 50 to 25 / 50 for the
    # trainers (lower median 16 / 50), so the public-span screen excludes it (flag 3). Without s (round 1) the span is
    # v's alone, and the rider (51 % off it) passes.
    v = torch.tensor([4, 4, 0], dtype=torch.int64)
    rows = torch.tensor([[4, 3, 5], [5, 4, -5], [3, 5, 4], [10, 0, 1]], dtype=torch.int64)
    spec = QuantSpec()
    cfg = RuleConfig(f=0, m=0, tau_pct=0, dup_pct=0, floor_pct=0)
    plain = aggregate_round(rows, rows, v, torch.zeros(3), spec, cfg)
    novel = aggregate_round(rows, rows, v, torch.zeros(3), spec, cfg, step=torch.tensor([5, 0, 0]))
    assert plain.accepted == [True] * 4 and novel.accepted == [True, True, True, False] and novel.flags[3] == 3
    assert plain.inner == [28, 36, 32, 40] and novel.inner == [12, 16, 20, 0]
    assert novel.scores[3] == 0 < min(novel.scores[:3])
    assert plain.scores[3] >= max(plain.scores[:3])
