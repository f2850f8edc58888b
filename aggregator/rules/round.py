"""One entry point for a round: outlier rule, proven scores and the new global model (PROTOCOL §3)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from aggregator.rules.average import average
from aggregator.rules.fltrust import CosineResult, clip_weights, clipped_average, cosine_filter
from aggregator.rules.screen import ScreenedKrum, screened_multi_krum
from aggregator.rules.shapley import distances_norms_inner, first_order_shapley, inner_products
from market.errors import AggregationError
from market.ml.training import pick_device
from market.protocol.manifest import RuleConfig
from market.protocol.quant import QuantSpec


@dataclass(frozen=True)
class RoundOutcome:
    """Decisions (trainer-index order), proven scores, inner products a_i and the new global model."""

    accepted: list[bool]
    outlier: list[bool]
    scores: list[int]
    inner: list[int]
    new_global: torch.Tensor
    detail: ScreenedKrum | CosineResult | None


def aggregate_round(
    U_view: torch.Tensor, U_full: torch.Tensor, v: torch.Tensor, g_prev: torch.Tensor,
    spec: QuantSpec, config: RuleConfig = RuleConfig(), seq: Sequence[int] | None = None,
) -> RoundOutcome:
    """Run the configured outlier rule on the proof views, score the accepted, average the full updates.

    `seq` ranks the updates by submission (PROTOCOL §3 copies; default: row order). Runs on CUDA
    when present (integer results identical to the CPU's); returns the model on the CPU.
    """
    n = U_view.shape[0]
    if U_full.shape[0] != n:
        raise AggregationError("U_view and U_full differ in number of updates")
    seq = list(range(n)) if seq is None else list(seq)
    dev = pick_device()
    U_view, U_full, v, g_prev = U_view.to(dev), U_full.to(dev), v.to(dev), g_prev.to(dev)
    detail: ScreenedKrum | CosineResult | None = None
    if config.rule == "multi_krum":
        dist, nsq, a = distances_norms_inner(U_view, v)
        c = config
        detail = screened_multi_krum(dist, nsq, seq, c.f, c.m, c.tau_pct, c.dup_pct, c.floor_pct)
        accepted = detail.accepted
    elif config.rule == "fltrust":
        detail = cosine_filter(U_view, v, config.cos_threshold_pct)
        accepted, a = detail.accepted, detail.inner
    else:
        accepted, a = [True] * n, inner_products(U_view, v)
    scores = first_order_shapley(a, accepted)
    if config.rule == "fltrust":
        new_global = clipped_average(g_prev, U_full, clip_weights(detail.sq_norms, accepted), spec)
    else:
        new_global = average(g_prev, U_full, accepted, spec)
    return RoundOutcome(accepted, [not x for x in accepted], scores, a, new_global.cpu(), detail)
