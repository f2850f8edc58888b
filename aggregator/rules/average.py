"""New global model: previous model plus the mean of accepted quantized updates (PROTOCOL §3).

Over the proof view the model is fixed point (`model_spec`) and the mean is an integer floor division,
so that the round circuit proves it; elsewhere it is one correctly rounded float64 step.
"""

from __future__ import annotations

import torch

from market.errors import AggregationError
from market.protocol.quant import QuantSpec, dequantize, model_spec, to_fixed


def fixed_average(m_prev: torch.Tensor, total: torch.Tensor, n: int, spec: QuantSpec) -> torch.Tensor:
    """`m_prev + floor(total / n)` (int64; `m_prev` when `n = 0`): the view's new fixed-point model, §3.

    AggregationError if a value leaves `model_spec(spec)`'s range (the circuit could not prove it).
    """
    if n == 0:
        return m_prev.clone()
    m_new = m_prev + torch.div(total, n, rounding_mode="floor")
    qmax = model_spec(spec).qmax
    if m_new.numel() and int(m_new.abs().max()) > qmax:
        raise AggregationError(f"the model's proof view leaves its fixed-point range (|value| <= {qmax} / 2**{spec.scale_log2})")
    return m_new


def average(g_prev: torch.Tensor, Q_full: torch.Tensor, accepted: list[bool], spec: QuantSpec,
            view: tuple[int, int] | None = None, row_sum: torch.Tensor | None = None) -> torch.Tensor:
    """`g + float64(sum_A Q) / (|A| * 2**scale_log2)`, computed in float64 and rounded once to float32;
    over the proof view `view = (offset, length)`, `fixed_average` of g's fixed-point view instead.
    `row_sum`, the exact sum of all of Q's rows when a pass already made it, saves a pass over Q.

    The int64 sum is exact, the float64 conversion exact (|sum| < 2**53), the division and the
    addition correctly rounded (IEEE 754), so CPU and GPU agree bit for bit.
    """
    if Q_full.dtype != torch.int64 or Q_full.dim() != 2 or Q_full.shape[1] != g_prev.numel():
        raise AggregationError(f"Q_full must be int64 [n, {g_prev.numel()}], got {tuple(Q_full.shape)}")
    if len(accepted) != Q_full.shape[0]:
        raise AggregationError("accepted and Q_full differ in length")
    idx = [i for i, ok in enumerate(accepted) if ok]
    if not idx:
        return g_prev.detach().to(torch.float32).clone()
    rejected = [i for i, ok in enumerate(accepted) if not ok]
    if len(rejected) < len(idx):  # all rows minus the few rejected: one streaming pass, no gathered copy
        total = Q_full.sum(dim=0) if row_sum is None else row_sum.to(Q_full.device, copy=True)
        for i in rejected:  # row by row: no gathered copy of the rejected rows
            total -= Q_full[i]
    else:
        total = Q_full[torch.tensor(idx, device=Q_full.device)].sum(dim=0)
    step = total.to(torch.float64) / float(len(idx) * 2**spec.scale_log2)
    out = (g_prev.detach().to(step.device, torch.float64) + step).to(torch.float32)
    if view is not None:
        lo, hi = view[0], view[0] + view[1]
        m_prev = to_fixed(g_prev.detach().to(total.device)[lo:hi], model_spec(spec))
        out[lo:hi] = dequantize(fixed_average(m_prev, total[lo:hi], len(idx), spec), spec)
    return out
