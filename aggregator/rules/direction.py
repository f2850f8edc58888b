"""The validation direction v (docs/PROTOCOL.md §4): minus the validation-loss gradient, quantized."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from market.ml.tasks.base import Split
from market.ml.training import loss_gradient
from market.protocol.quant import QuantSpec


def quantize_direction(neg_grad: torch.Tensor, spec: QuantSpec) -> torch.Tensor:
    """`round_half_even(v * qmax / max|v|)` in float64 as int64; all zeros when v is zero."""
    x = neg_grad.detach().to(torch.float64).flatten()
    peak = x.abs().max() if x.numel() else torch.tensor(0.0, dtype=torch.float64)
    if float(peak) == 0.0:
        return torch.zeros(x.shape, dtype=torch.int64, device=x.device)
    return torch.round(x * float(spec.qmax) / peak).to(torch.int64)


def validation_direction(
    build: Callable[[], nn.Module], g_prev: torch.Tensor, val: Split, view: tuple[int, int], spec: QuantSpec
) -> torch.Tensor:
    """v over the proof view: minus the owner's validation-loss gradient at g(r-1), quantized (§4)."""
    offset, length = view
    grad = loss_gradient(build, g_prev, val)
    return quantize_direction(-grad[offset : offset + length], spec)
