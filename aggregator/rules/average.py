"""New global model: previous model plus the mean of accepted quantized updates (PROTOCOL §3)."""

from __future__ import annotations

import torch

from market.errors import AggregationError
from market.protocol.quant import QuantSpec


def average(g_prev: torch.Tensor, Q_full: torch.Tensor, accepted: list[bool], spec: QuantSpec) -> torch.Tensor:
    """`g + float64(sum_A Q) / (|A| * 2**scale_log2)`, computed in float64 and rounded once to float32.

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
        total = Q_full.sum(dim=0)
        if rejected:
            total -= Q_full[torch.tensor(rejected, device=Q_full.device)].sum(dim=0)
    else:
        total = Q_full[torch.tensor(idx, device=Q_full.device)].sum(dim=0)
    step = total.to(torch.float64) / float(len(idx) * 2**spec.scale_log2)
    return (g_prev.detach().to(step.device, torch.float64) + step).to(torch.float32)
