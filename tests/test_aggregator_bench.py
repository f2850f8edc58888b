"""Benchmark helpers: the NumPy baseline decides exactly like the torch pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aggregator.eval.bench import make_inputs, numpy_pipeline, run
from aggregator.rules.round import aggregate_round
from market.protocol.manifest import RuleConfig
from market.protocol.quant import QuantSpec


@pytest.mark.parametrize("tau", [0, 150])
def test_numpy_baseline_matches_ours(tau: int) -> None:
    U, v, g = make_inputs(12, 3_000, f=2, seed=5)
    cfg, spec = RuleConfig(f=2, m=0, tau_pct=tau, dup_pct=0, floor_pct=0), QuantSpec()
    ours = aggregate_round(U, U, v, g, spec, cfg)
    acc, scores, new_g = numpy_pipeline(U.numpy().astype(np.float64), v.numpy().astype(np.float64), g.numpy(), cfg, spec)
    assert acc == ours.accepted and scores == ours.scores and np.array_equal(new_g, ours.new_global.numpy())
    assert ours.accepted[:2] == [False, False] and all(ours.accepted[2:])  # the sign-flipped inputs


def test_inputs_are_quantized_int64() -> None:
    U, v, g = make_inputs(3, 100, f=1, seed=0)
    assert U.dtype == v.dtype == torch.int64 and int(U.abs().max()) <= 32767 and g.shape == (100,)


@pytest.mark.slow
def test_run_against_flower_small() -> None:
    out = run(sizes=((8, 2_000),))
    assert out["same_decisions"] is True and out["speedup_n8_d1e3"] > 0
