"""FLTrust-style outlier rule: accept updates whose cosine with v exceeds a threshold (exact integers).

`cos_i = a_i / (|u_i| |v|)` with `a_i = <v, u_i>`. The test `cos_i > t / 100` is done without
square roots: `a_i > 0 and 10_000 * a_i**2 > t**2 * |u_i|**2 * |v|**2` on Python ints, so it is
provable with the same inner products as the score. Its aggregation clips each accepted update to
the median norm of the accepted updates (weight `min(1, median / |u_i|)`), as FLTrust normalises
client updates to a reference norm; that clipped average is computed in float64 and is *not*
the proven PROTOCOL §3 average.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from aggregator.rules.shapley import inner_products, sq_norms
from market.errors import AggregationError
from market.protocol.quant import QuantSpec


@dataclass(frozen=True)
class CosineResult:
    """Per update: inner product with v, squared norm, accepted flag; `v_sq = |v|**2`."""

    inner: list[int]
    sq_norms: list[int]
    v_sq: int
    accepted: list[bool]


def cosine_filter(U: torch.Tensor, v: torch.Tensor, threshold_pct: int) -> CosineResult:
    """Accept row i iff cos(U[i], v) > threshold_pct / 100, tested exactly on squares."""
    if not 0 <= threshold_pct < 100:
        raise AggregationError(f"threshold_pct must be in 0..99, got {threshold_pct}")
    a = inner_products(U, v)
    norms = sq_norms(U)
    v_sq = inner_products(v[None, :], v)[0]
    t2 = threshold_pct * threshold_pct
    accepted = [ai > 0 and 10_000 * ai * ai > t2 * ni * v_sq for ai, ni in zip(a, norms)]
    return CosineResult(a, norms, v_sq, accepted)


def clip_weights(norms_sq: list[int], accepted: list[bool]) -> list[float]:
    """`min(1, median / |u_i|)` for accepted updates (median of accepted norms), 0 for the others."""
    acc = sorted(n for n, ok in zip(norms_sq, accepted) if ok)
    if not acc:
        return [0.0] * len(norms_sq)
    median_sq = acc[(len(acc) - 1) // 2]
    return [
        (1.0 if n <= median_sq else math.sqrt(median_sq / n)) if ok else 0.0 for n, ok in zip(norms_sq, accepted)
    ]


def clipped_average(
    g_prev: torch.Tensor, Q_full: torch.Tensor, weights: list[float], spec: QuantSpec
) -> torch.Tensor:
    """`g + sum_i w_i Q_i / (count(w > 0) * 2**scale_log2)` in float64, rounded to float32."""
    count = sum(1 for w in weights if w > 0)
    if count == 0:
        return g_prev.detach().to(torch.float32).clone()
    w = torch.tensor(weights, dtype=torch.float64, device=Q_full.device)
    step = (w @ Q_full.to(torch.float64)) / float(count * 2**spec.scale_log2)
    return (g_prev.detach().to(step.device, torch.float64) + step).to(torch.float32)
