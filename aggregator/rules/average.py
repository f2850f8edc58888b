"""New global model: previous model plus the mean of accepted quantized updates (PROTOCOL §3).

Over the proof view the model is fixed point (`model_spec`) and the mean is an integer floor division,
so that the round circuit proves it; elsewhere it is one correctly rounded float64 step.
"""

from __future__ import annotations

import numpy as np
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


def _accepted_sum(Q: torch.Tensor, accepted: list[bool], row_sum: torch.Tensor | None) -> torch.Tensor:
    """The exact sum of the accepted rows as a new float64 tensor (integers below 2**53): all rows (`row_sum` when
    given) minus the rejected ones row by row when those are fewer, else the accepted ones; NumPy on the CPU."""
    kept = [i for i, ok in enumerate(accepted) if ok]
    rejected = [i for i, ok in enumerate(accepted) if not ok]
    if Q.device.type == "cpu":
        Qn = Q.numpy()
        if len(rejected) < len(kept):
            total = (Qn.sum(axis=0) if row_sum is None else row_sum.numpy()).astype(np.float64)
            for i in rejected:
                np.subtract(total, Qn[i], out=total)
        else:
            total = Qn[kept].sum(axis=0).astype(np.float64)
        return torch.from_numpy(total)
    if len(rejected) < len(kept):
        sums = (Q.sum(dim=0) if row_sum is None else row_sum.to(Q.device)).to(torch.float64)
        for i in rejected:
            sums -= Q[i]
        return sums
    return Q[torch.tensor(kept, device=Q.device)].sum(dim=0).to(torch.float64)


def average(g_prev: torch.Tensor, Q_full: torch.Tensor, accepted: list[bool], spec: QuantSpec,
            view: tuple[int, int] | None = None, row_sum: torch.Tensor | None = None) -> torch.Tensor:
    """`g + float64(sum_A Q) / (|A| * 2**scale_log2)`, computed in float64 and rounded once to float32;
    over the proof view `view = (offset, length)`, `fixed_average` of g's fixed-point view instead.
    `row_sum`, the exact sum of all of Q's rows when a pass already made it, saves a pass over Q.

    The sum is exact (integers below 2**53 in float64), the division and the addition correctly rounded
    (IEEE 754), so CPU and GPU agree bit for bit. Every step after the sum runs in place: on 10^6-long
    models each fresh tensor costs milliseconds of page faults.
    """
    if Q_full.dtype != torch.int64 or Q_full.dim() != 2 or Q_full.shape[1] != g_prev.numel():
        raise AggregationError(f"Q_full must be int64 [n, {g_prev.numel()}], got {tuple(Q_full.shape)}")
    if len(accepted) != Q_full.shape[0]:
        raise AggregationError("accepted and Q_full differ in length")
    idx = [i for i, ok in enumerate(accepted) if ok]
    if not idx:
        return g_prev.detach().to(torch.float32).clone()
    total = _accepted_sum(Q_full, accepted, row_sum)
    view_total = None if view is None else total[view[0] : view[0] + view[1]].to(torch.int64)
    k, g = float(len(idx) * 2**spec.scale_log2), g_prev.detach().to(total.device)
    if total.device.type == "cpu":  # NumPy, single-threaded: no OpenMP pool to wake for a memory-bound pass
        t = total.numpy()
        np.add(np.divide(t, k, out=t), g.numpy(), out=t)
        out = torch.from_numpy(t.astype(np.float32))
    else:
        out = total.div_(k).add_(g).to(torch.float32)
    if view is not None and view_total is not None:
        lo, hi = view[0], view[0] + view[1]
        m_prev = to_fixed(g_prev.detach().to(out.device)[lo:hi], model_spec(spec))
        out[lo:hi] = dequantize(fixed_average(m_prev, view_total, len(idx), spec), spec)
    return out
