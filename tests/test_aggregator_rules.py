"""Average (§3), validation direction (§4), the FLTrust-style rule and aggregate_round."""

from __future__ import annotations

import math

import pytest
import torch

from aggregator.rules.average import average
from aggregator.rules.direction import quantize_direction, validation_direction
from aggregator.rules.fltrust import clip_weights, clipped_average, cosine_filter
from aggregator.rules.round import aggregate_round
from aggregator.rules.screen import ScreenedKrum
from market.errors import AggregationError
from market.ml.tasks import digits_task, flatten
from market.protocol.manifest import RuleConfig
from market.protocol.quant import QuantSpec

SPEC = QuantSpec()


def test_average_by_hand() -> None:
    g = torch.tensor([0.5, -1.0])
    Q = torch.tensor([[4096, 0], [2048, -4096], [99999, 99999]], dtype=torch.int64)
    # (4096 + 2048) / (2 * 4096) = 0.75; -4096 / 8192 = -0.5.
    assert average(g, Q, [True, True, False], SPEC).tolist() == [1.25, -1.5]  # all minus the rejected
    assert average(g, Q, [True, False, False], SPEC).tolist() == [1.5, -1.0]  # the accepted gathered
    assert average(g, Q, [False] * 3, SPEC).tolist() == [0.5, -1.0]
    with pytest.raises(AggregationError):
        average(g, Q, [True], SPEC)


def test_average_rounds_once_from_float64() -> None:
    g = torch.tensor([1.0])
    Q = torch.tensor([[1], [0], [0]], dtype=torch.int64)
    expected = torch.tensor([1.0 + 1 / (3 * 4096)], dtype=torch.float64).to(torch.float32)
    assert torch.equal(average(g, Q, [True] * 3, SPEC), expected)


def test_direction_by_hand() -> None:
    # 0.5 * 32767 = 16383.5 rounds half to even -> 16384; 0.25 * 32767 = 8191.75 -> 8192.
    q = quantize_direction(torch.tensor([0.5, -1.0, 0.25]), SPEC)
    assert q.dtype == torch.int64 and q.tolist() == [16384, -32767, 8192]
    assert quantize_direction(torch.zeros(3), SPEC).tolist() == [0, 0, 0]


def test_validation_direction_points_downhill() -> None:
    task = digits_task("softmax")
    g = flatten(task.model(0))
    v = validation_direction(task.build_model, g, task.val, task.view(), SPEC)
    assert v.shape == (650,) and int(v.abs().max()) == SPEC.qmax
    from market.ml.training import evaluate

    step = v.to(torch.float32) / SPEC.qmax * 0.05
    assert evaluate(task.build_model, g + step, task.val)[0] < evaluate(task.build_model, g, task.val)[0]


def test_cosine_filter_by_hand() -> None:
    v = torch.tensor([1, 0], dtype=torch.int64)
    U = torch.tensor([[1, 1], [1, -3], [-1, 0], [0, 0]], dtype=torch.int64)
    r = cosine_filter(U, v, 50)  # cosines 0.707, 0.316, -1, undefined
    assert r.inner == [1, 1, -1, 0] and r.sq_norms == [2, 10, 1, 0] and r.v_sq == 1
    assert r.accepted == [True, False, False, False]
    assert cosine_filter(U, v, 0).accepted == [True, True, False, False]
    # Exactly at the threshold is rejected: cos = 0.6 for (3, 4).
    assert cosine_filter(torch.tensor([[3, 4]], dtype=torch.int64), v, 60).accepted == [False]
    assert cosine_filter(torch.tensor([[3, 4]], dtype=torch.int64), v, 59).accepted == [True]


def test_clip_weights_and_clipped_average() -> None:
    w = clip_weights([2, 10, 1, 0], [True, True, False, False])
    assert w[0] == 1.0 and math.isclose(w[1], math.sqrt(0.2)) and w[2:] == [0.0, 0.0]
    Q = torch.tensor([[4096, 0], [0, 8192]], dtype=torch.int64)
    assert clipped_average(torch.zeros(2), Q, [1.0, 0.5], SPEC).tolist() == [0.5, 0.5]


def test_aggregate_round_multi_krum() -> None:
    U = torch.tensor([[1], [2], [3], [4], [11]], dtype=torch.int64) * 4096
    v = torch.tensor([1], dtype=torch.int64)
    out = aggregate_round(U, U, v, torch.zeros(1), SPEC, RuleConfig(f=1, m=0, tau_pct=0, dup_pct=0, floor_pct=0))
    assert out.accepted == [True, True, True, True, False] and out.outlier[4]
    assert out.flags == [0, 0, 0, 0, 3]  # a Multi-Krum outlier is excluded, not slashed
    assert out.inner == [4096, 8192, 12288, 16384, 45056]
    assert out.scores[4] == 0 and out.scores[3] > out.scores[0]
    assert out.new_global.tolist() == [2.5]  # mean of 1, 2, 3, 4


def test_updates_against_v_count_for_krums_k_and_m() -> None:
    """PROTOCOL §3: Multi-Krum's k and m_eff are those of the screened round, the updates against v included,
    capped at what is left: removing a sign flipper first must not leave Krum without neighbours (k = 0 would
    select everything, the far update too)."""
    U = torch.tensor([[-3], [-2], [1], [2], [3], [30]], dtype=torch.int64) * 4096
    v = torch.tensor([1], dtype=torch.int64)
    out = aggregate_round(U, U, v, torch.zeros(1), SPEC, RuleConfig(f=3, m=0, tau_pct=175, dup_pct=0, floor_pct=0))
    assert out.flags == [3, 3, 0, 0, 0, 3]
    detail = out.detail
    assert isinstance(detail, ScreenedKrum)
    # n_screened = 6, f = 3: k(6) = 1 (without the count k(4) would be 0); m(6) = 3 leaves 3 places unselected,
    # so m_eff = max(1, 4 - 3) = 1 and the tolerance keeps the three honest updates
    assert detail.krum.k == 1 and detail.krum.m_eff == 1


def test_aggregate_round_fltrust_and_none() -> None:
    U = torch.tensor([[4096, 0], [-4096, 0]], dtype=torch.int64)
    v = torch.tensor([1, 0], dtype=torch.int64)
    ft = aggregate_round(U, U, v, torch.zeros(2), SPEC, RuleConfig(rule="fltrust"))
    assert ft.accepted == [True, False] and ft.new_global.tolist() == [1.0, 0.0]
    fa = aggregate_round(U, U, v, torch.zeros(2), SPEC, RuleConfig(rule="none"))
    assert fa.accepted == [True, True] and fa.new_global.tolist() == [0.0, 0.0]
    with pytest.raises(AggregationError):
        RuleConfig(rule="median")


@pytest.mark.parametrize("rule", ["multi_krum", "fltrust", "none"])
def test_aggregate_round_with_no_valid_update(rule: str) -> None:
    empty = torch.zeros((0, 3), dtype=torch.int64)
    g = torch.tensor([1.0, 2.0, 3.0])
    out = aggregate_round(empty, empty, torch.tensor([1, 0, 0]), g, SPEC, RuleConfig(rule=rule))
    assert out.accepted == [] and out.scores == [] and torch.equal(out.new_global, g)
