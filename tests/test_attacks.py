"""Attacks: each transformation on hand-made updates, and `craft` over a round."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from market.errors import ConfigError
from market.ml.attacks import (
    ATTACKS,
    SOLO_ATTACKS,
    AttackContext,
    collusion,
    craft,
    free_rider_copy,
    free_rider_zero,
    gaussian_noise,
    get_attack,
    label_flip,
    scaling,
    sign_flip,
)
from market.ml.tasks.base import Split

U = [torch.tensor([1.0, 2.0]), torch.tensor([3.0, -1.0]), torch.tensor([0.5, 0.5]), torch.tensor([2.0, 0.0])]


def test_update_attacks_by_hand() -> None:
    assert sign_flip(U[0], boost=2.0).tolist() == [-2.0, -4.0]
    assert scaling(U[1], 10.0).tolist() == [30.0, -10.0]
    assert free_rider_zero(U[0]).tolist() == [0.0, 0.0]
    assert collusion([U[0], U[1]], boost=2.0).tolist() == [-4.0, -1.0]
    noise = gaussian_noise(torch.zeros(10_000), sigma=0.5, seed=1)
    assert abs(float(noise.std()) - 0.5) < 0.02 and torch.equal(noise, gaussian_noise(torch.zeros(10_000), 0.5, 1))
    copy = free_rider_copy(U[1], seed=0)
    assert not torch.equal(copy, U[1]) and torch.allclose(copy, U[1], atol=0.02)


def test_label_flip() -> None:
    data = Split(torch.zeros(3, 2), torch.tensor([0, 3, 9]))
    flipped = label_flip(data, 10)
    assert flipped.y.tolist() == [9, 6, 0] and torch.equal(flipped.x, data.x)


def test_craft_touches_only_attackers() -> None:
    out = craft("sign_flip", U, [1, 3], seed=0)
    assert out[0] is U[0] and out[2] is U[2]
    assert out[1].tolist() == [-6.0, 2.0] and out[3].tolist() == [-4.0, 0.0]
    group = craft("collusion", U, [1, 3], seed=0)
    assert torch.equal(group[1], group[3]) and group[1].tolist() == [-5.0, 1.0]
    copies = craft("free_rider_copy", U, [1, 3], seed=0)
    assert torch.allclose(copies[1], U[0], atol=0.01) and torch.allclose(copies[3], U[2], atol=0.01)
    assert craft("scaling", U, [2], seed=0)[2].tolist() == [2.0, 2.0]
    assert craft("label_flip", U, [2], seed=0) == U  # acts on data, not on updates
    assert set(ATTACKS) >= {"sign_flip", "scaling", "gaussian", "label_flip", "free_rider_zero", "collusion"}
    with pytest.raises(ConfigError, match="sign_flip"):
        craft("backdoor", U, [0], seed=0)


def test_one_definition_per_attack_for_every_caller() -> None:
    """`craft` (the evaluation) and the trainer daemon build the same AttackContext and so the same update."""
    honest = torch.tensor([3.0, 4.0, 0.0, 0.0])
    ctx = AttackContext(honest, n=8, seed=5)
    assert get_attack("scaling")(ctx).tolist() == [24.0, 32.0, 0.0, 0.0]  # factor n
    noise = get_attack("gaussian")(AttackContext(torch.full((40_000,), 0.01), n=8, seed=5))
    assert abs(float(noise.norm()) - 2 * 0.01 * 200) < 0.1  # norm about twice the attacker's own
    assert torch.equal(craft("gaussian", [honest, U[0], U[1], U[2]], [0], seed=5)[0], get_attack("gaussian")(AttackContext(honest, 4, 5)))
    assert get_attack("label_flip").poison is label_flip and get_attack("label_flip")(ctx) is honest
    with pytest.raises(ConfigError, match="victim"):
        get_attack("free_rider_copy")(ctx)


def test_names_and_solo_choices() -> None:
    assert tuple(n for n in ATTACKS if n != "collusion") == SOLO_ATTACKS
    with pytest.raises(ConfigError, match="choose one of sign_flip, scaling"):
        get_attack("collusion", solo=True)


def test_names_import_without_torch() -> None:
    code = "import sys, market.ml.attacks as a; assert a.ATTACKS and 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
