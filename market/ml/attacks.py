"""Attacks for evaluating the outlier rule and the scores; attackers' honest counterparts stay non-IID.

Every function is pure: it takes the update (or data) the attacker would honestly produce and
returns the malicious one. `craft` applies an attack to a whole round's updates.
"""

from __future__ import annotations

import torch

from market.ml.tasks.base import Split

ATTACKS = ("sign_flip", "scaling", "gaussian", "label_flip", "free_rider_zero", "free_rider_copy", "collusion")


def sign_flip(update: torch.Tensor, boost: float = 1.0) -> torch.Tensor:
    """Move against the learning direction: `-boost * update`."""
    return -boost * update


def scaling(update: torch.Tensor, factor: float) -> torch.Tensor:
    """Model replacement: the update boosted by `factor` (about n, to survive averaging)."""
    return factor * update


def gaussian_noise(like: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    """Pure noise N(0, sigma**2) in place of an update."""
    gen = torch.Generator().manual_seed(seed)
    return sigma * torch.randn(like.shape, generator=gen, dtype=torch.float32)


def label_flip(data: Split, num_classes: int) -> Split:
    """Data poisoning: label c becomes num_classes - 1 - c (then train honestly on it)."""
    return Split(data.x, num_classes - 1 - data.y)


def free_rider_zero(like: torch.Tensor) -> torch.Tensor:
    """A free rider that trains nothing and submits a zero update."""
    return torch.zeros_like(like)


def free_rider_copy(victim_update: torch.Tensor, seed: int, rel_noise: float = 1e-3) -> torch.Tensor:
    """A free rider copying another trainer's update, jittered so that its commitment differs."""
    gen = torch.Generator().manual_seed(seed)
    jitter = torch.randn(victim_update.shape, generator=gen, dtype=torch.float32)
    return victim_update + rel_noise * float(victim_update.abs().max()) * jitter


def collusion(group_updates: list[torch.Tensor], boost: float) -> torch.Tensor:
    """A colluding group's common update: minus `boost` times the mean of the members' honest updates."""
    return -boost * torch.stack(group_updates).mean(dim=0)


def craft(attack: str, updates: list[torch.Tensor], attackers: list[int], seed: int) -> list[torch.Tensor]:
    """Replace the attackers' honest updates by the attack's (label flip acts on data, not here)."""
    if attack not in ATTACKS:
        raise ValueError(f"unknown attack {attack!r}; choose one of {ATTACKS}")
    out = list(updates)
    honest = [i for i in range(len(updates)) if i not in set(attackers)]
    scale = float(torch.stack([updates[i] for i in honest]).norm(dim=1).mean()) if honest else 1.0
    common = collusion([updates[i] for i in attackers], boost=2.0) if attack == "collusion" else None
    for j, i in enumerate(attackers):
        u = updates[i]
        if attack == "sign_flip":
            out[i] = sign_flip(u, boost=2.0)
        elif attack == "scaling":
            out[i] = scaling(u, factor=float(len(updates)))
        elif attack == "gaussian":
            out[i] = gaussian_noise(u, sigma=2.0 * scale / u.numel() ** 0.5, seed=seed + j)
        elif attack == "free_rider_zero":
            out[i] = free_rider_zero(u)
        elif attack == "free_rider_copy":
            out[i] = free_rider_copy(updates[honest[j % len(honest)]], seed=seed + j)
        elif attack == "collusion":
            out[i] = common
    return out
