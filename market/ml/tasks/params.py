"""Flat views of a model: stable parameter order, flatten/unflatten and the proof view."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ParamSlot:
    """One parameter tensor's place in the flat vector."""

    name: str
    shape: tuple[int, ...]
    offset: int
    length: int


def layout(model: nn.Module) -> list[ParamSlot]:
    """Parameters in `named_parameters()` order (registration order: stable for a given class)."""
    slots, offset = [], 0
    for name, p in model.named_parameters():
        slots.append(ParamSlot(name, tuple(p.shape), offset, p.numel()))
        offset += p.numel()
    return slots


def num_params(model: nn.Module) -> int:
    """Length of the flat vector."""
    return sum(p.numel() for p in model.parameters())


def flatten(model: nn.Module) -> torch.Tensor:
    """All parameters concatenated into one float32 CPU vector."""
    return torch.cat([p.detach().reshape(-1).to("cpu", torch.float32) for p in model.parameters()])


def unflatten_into(model: nn.Module, flat: torch.Tensor) -> nn.Module:
    """Copy a flat vector into the model's parameters (in place); returns the model."""
    if flat.numel() != num_params(model):
        raise ValueError(f"flat vector has {flat.numel()} values, model has {num_params(model)}")
    with torch.no_grad():
        for slot, p in zip(layout(model), model.parameters()):
            p.copy_(flat[slot.offset : slot.offset + slot.length].view(slot.shape))
    return model


def proof_view(model: nn.Module, prefix: str | None) -> tuple[int, int]:
    """(offset, length) of the parameters whose names start with `prefix` (the whole model if None)."""
    slots = layout(model)
    if prefix is None:
        return 0, num_params(model)
    chosen = [s for s in slots if s.name.startswith(prefix)]
    if not chosen:
        raise ValueError(f"no parameter named {prefix}*")
    start, end = chosen[0].offset, chosen[-1].offset + chosen[-1].length
    if sum(s.length for s in chosen) != end - start:
        raise ValueError(f"parameters {prefix}* are not contiguous")
    return start, end - start
