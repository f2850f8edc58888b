"""Local training and evaluation: deterministic, CUDA when present; update = local - global weights."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from market.errors import ConfigError
from market.ml.tasks.base import Split, accuracy
from market.ml.tasks.params import flatten, unflatten_into
from market.protocol.manifest import HyperParams


def pick_device() -> torch.device:
    """CUDA if available, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _model_at(build: Callable[[], nn.Module], flat: torch.Tensor, device: torch.device) -> nn.Module:
    """A model holding the flat weights, on `device`."""
    return unflatten_into(build(), flat.detach().cpu()).to(device)


def local_update(
    build: Callable[[], nn.Module], global_flat: torch.Tensor, data: Split, hp: HyperParams,
    device: torch.device | None = None,
) -> torch.Tensor:
    """SGD over `data` from the global weights; returns the float32 update (local minus global)."""
    device = device or pick_device()
    model = _model_at(build, global_flat, device)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=hp.lr)
    gen = torch.Generator().manual_seed(hp.seed)
    x, y = data.x.to(device), data.y.to(device)
    for _ in range(hp.epochs):
        perm = torch.randperm(len(data), generator=gen).to(device)
        for start in range(0, len(data), hp.batch_size):
            b = perm[start : start + hp.batch_size]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x[b]), y[b]).backward()
            opt.step()
    return flatten(model) - global_flat.detach().cpu().to(torch.float32)


def split_step(build: Callable[[], nn.Module], flat: torch.Tensor, data: Split, hp: HyperParams) -> torch.Tensor:
    """The project's local training on `data` from the flat weights, as `local_update` but float64 on the CPU and in
    eval mode (no dropout), so that every machine gets the same update: the split step h of PROTOCOL §4."""
    model = _model_at(build, flat, torch.device("cpu")).double()
    model.eval()
    opt = torch.optim.SGD(model.parameters(), lr=hp.lr)
    gen = torch.Generator().manual_seed(hp.seed)
    x = data.x.double()
    for _ in range(hp.epochs):
        perm = torch.randperm(len(data), generator=gen)
        for start in range(0, len(data), hp.batch_size):
            b = perm[start : start + hp.batch_size]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x[b]), data.y[b]).backward()
            opt.step()
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]) - flat.detach().cpu().to(torch.float64)


def evaluate(build: Callable[[], nn.Module], flat: torch.Tensor, data: Split) -> tuple[float, float]:
    """(mean cross-entropy loss, accuracy) of the flat weights on `data`."""
    model = _model_at(build, flat, torch.device("cpu"))
    model.eval()
    with torch.no_grad():
        logits = model(data.x)
        return float(F.cross_entropy(logits, data.y)), accuracy(logits, data.y)


def loss_gradient(build: Callable[[], nn.Module], flat: torch.Tensor, data: Split) -> torch.Tensor:
    """Flat float64 gradient of the mean cross-entropy loss on `data` at the flat weights. Float64 throughout, so
    that machines whose kernels sum in another order still quantize v alike (PROTOCOL §4: anyone recomputes it)."""
    model = _model_at(build, flat, torch.device("cpu")).double()
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(data.x.double()), data.y).backward()
    grads = []
    for name, p in model.named_parameters():
        if p.grad is None:
            raise ConfigError(f"model parameter {name!r} takes no part in the loss, so it has no gradient")
        grads.append(p.grad.reshape(-1))
    return torch.cat(grads)
