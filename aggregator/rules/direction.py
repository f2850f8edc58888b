"""The round's public directions (docs/PROTOCOL.md §4): the validation direction v, minus the validation-loss gradient,
and the split step h, the project's local training on the validation split; both quantized alike."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from market.ml.tasks.base import Split
from market.ml.training import loss_gradient, split_step
from market.protocol.manifest import HyperParams
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


def split_direction(
    build: Callable[[], nn.Module], g_prev: torch.Tensor, val: Split, view: tuple[int, int], spec: QuantSpec,
    hp: HyperParams,
) -> torch.Tensor:
    """h over the proof view: the project's local training on the validation split from g(r-1) (`split_step`),
    quantized as v is (§4). What a trainer that trains on the published split sends lies along it."""
    offset, length = view
    return quantize_direction(split_step(build, g_prev, val, hp)[offset : offset + length], spec)
