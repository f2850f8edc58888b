"""Novelty of an update (PROTOCOL §3): its inner product with the part of v that the previous proven step
does not explain, so that resubmitting the market's own last step (or any mix of it) earns nothing.

Exact integers, as the circuit computes them. `s = M(r-1) - M(r-2)` is the previous step of the model's
proof view (fixed point, PROTOCOL §3; zero in round 1). With `ss = <s, s>`, `vs = <v, s>` and
`su_i = <s, u_i>`, the novel inner product is `a'_i = floor((ss * a_i - vs * su_i) / ss)`, i.e.
`<v_perp, u_i>` floored, where `v_perp = v - (vs / ss) s` is v without its component along s; `ss = 0`
leaves `a_i` unchanged. An update `alpha * s + noise` has `a'_i = <v_perp, noise>`, zero in expectation.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from aggregator.rules.shapley import inner_products
from market.errors import AggregationError
from market.protocol.commitment import model_view
from market.protocol.quant import QuantSpec


def novel_inner(a: Sequence[int], U: torch.Tensor, v: torch.Tensor, step: torch.Tensor,
                su: Sequence[int] | None = None) -> list[int]:
    """`floor((ss a_i - vs su_i) / ss)` per row of the proof views `U` (int64 [n, d]); `a` when `ss = 0`. `su`, when
    given, is `<s, U[i]>` already computed (the screen's), so U is not read again."""
    if step.dtype != torch.int64 or step.shape != v.shape or U.shape[0] != len(a):
        raise AggregationError(f"step must be int64 like v {tuple(v.shape)} and a one per row of U")
    ss = inner_products(step[None, :], step)[0]
    if ss == 0:
        return [int(x) for x in a]
    vs = inner_products(v[None, :], step)[0]
    su = inner_products(U, step) if su is None else [int(x) for x in su]
    if len(su) != len(a):
        raise AggregationError(f"need one <s, u_i> per row (got {len(su)} for {len(a)})")
    return [(ss * int(ai) - vs * sui) // ss for ai, sui in zip(a, su)]


def previous_step(g_prev: torch.Tensor, g_prev2: torch.Tensor, view: tuple[int, int], spec: QuantSpec) -> torch.Tensor:
    """`s = M(r-1) - M(r-2)` over the proof view (int64): the proven models' fixed-point views (PROTOCOL §3)."""
    return model_view(g_prev, view, spec) - model_view(g_prev2, view, spec)


def float_step(g_prev: torch.Tensor, g_prev2: torch.Tensor, view: tuple[int, int], spec: QuantSpec) -> torch.Tensor:
    """The previous step over the view at the updates' scale, rounded half-even: for simulations whose
    models are float averages (not on the fixed-point grid)."""
    offset, length = view
    d = (g_prev.flatten() - g_prev2.flatten())[offset : offset + length].to(torch.float64)
    return torch.round(d * float(2**spec.scale_log2)).to(torch.int64)
