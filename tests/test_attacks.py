"""Attacks: each transformation on hand-made updates, and `craft` over a round."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from market.errors import ConfigError
from market.ml.attacks import (
    ATTACKS,
    FREE_RIDER_NOISE,
    GRIEF_NOISE,
    JITTER,
    SHRINK,
    SOLO_ATTACKS,
    AttackContext,
    History,
    alie,
    alie_z,
    collusion,
    craft,
    free_rider_copy,
    free_rider_mix,
    free_rider_peer,
    free_rider_scaled,
    free_rider_stale,
    free_rider_step,
    free_rider_zero,
    gaussian_noise,
    get_attack,
    ipm,
    jitter,
    label_flip,
    rel_sq_dist,
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
    """The trainer daemon is offered neither group attacks nor free riders that need the market's history; nor a
    copier, which needs a group: a sealed round reveals nothing before every commit is in (PROTOCOL §3); nor the own
    replayer, which needs its own last update (the evaluation keeps it)."""
    group_or_history = {"collusion", "alie", "ipm", "free_rider_copy", "free_rider_own", "free_rider_step", "free_rider_stale",
                        "free_rider_scaled",
                        "free_rider_mix", "free_rider_peer", "free_rider_direction", "free_rider_split", "grief_replay"}
    assert tuple(n for n in ATTACKS if n not in group_or_history) == SOLO_ATTACKS
    for name in group_or_history:
        with pytest.raises(ConfigError, match="choose one of sign_flip, scaling"):
            get_attack(name, solo=True)
    history = ("free_rider_step", "free_rider_stale", "free_rider_scaled", "free_rider_mix", "free_rider_peer", "free_rider_direction",
               "grief_replay")
    assert all(ATTACKS[n].history and not ATTACKS[n].trains for n in history)
    assert [n for n in ATTACKS if ATTACKS[n].first] == ["grief_replay"]


def test_the_griefer_replays_a_previous_update_within_a_millionth() -> None:
    """Its commitment is new, but in the copy rule's measure it is the replayed update (the copy threshold is 5 %)."""
    gen = torch.Generator().manual_seed(12345)
    previous = tuple(torch.randn(4000, generator=gen) * (k + 1) for k in range(4))
    ctx = AttackContext(None, 10, seed=3, history=History(previous[0], previous, norm=30.0))
    grief = get_attack("grief_replay")(ctx)
    assert min(rel_sq_dist(grief, p) for p in previous) < 2e-6
    assert all(not torch.equal(grief, p) for p in previous)


def test_the_griefer_aims_at_the_trainer_whose_last_two_updates_moved_least() -> None:
    """Reveals name their trainer, so a griefer replays the last update of the steadiest trainer, whose next update is
    the likeliest to fall within the copy rule of it; a group aims at distinct trainers by rank."""
    gen = torch.Generator().manual_seed(7)
    before = [torch.randn(4000, generator=gen) for _ in range(3)]
    moves = (0.5, 0.01, 0.2)  # trainer 1 moved least, then trainer 2
    last = [b + m * torch.randn(4000, generator=gen) for b, m in zip(before, moves)]
    history = History(last[0], tuple(last), norm=60.0, pairs=tuple(zip(last, before)))
    aimed = [get_attack("grief_replay")(AttackContext(None, 10, seed=3, history=history, rank=k)) for k in range(4)]
    assert [min(range(3), key=lambda t: rel_sq_dist(a, last[t])) for a in aimed] == [1, 2, 0, 1]
    assert all(rel_sq_dist(a, last[t]) < 2e-6 for a, t in zip(aimed, (1, 2, 0, 1)))


def test_alie_and_ipm_by_hand() -> None:
    assert abs(alie_z(10, 3) - 0.5244) < 1e-4 and abs(alie_z(10, 2) - 0.2533) < 1e-4  # Phi^-1(0.7), Phi^-1(0.6)
    assert alie_z(10, 6) == alie_z(10, 9) and abs(alie_z(10, 6) - 1.2816) < 1e-4  # a majority: s = 1, Phi^-1(0.9)
    assert alie_z(1, 1) == 0.0
    cloud = [torch.tensor([1.0, 2.0]), torch.tensor([3.0, 2.0])]  # mean (2, 2), population std (1, 0)
    assert alie(cloud, 0.5).tolist() == [1.5, 2.0]
    assert ipm(cloud, 1.0).tolist() == [-2.0, -2.0]


def test_colluders_jitter_apart_beyond_the_copy_screen() -> None:
    """Jittered colluders are no copies of one another (5 % relative squared distance), yet stay near the base."""
    gen = torch.Generator().manual_seed(0)
    honest = [torch.randn(2000, generator=gen) + 1.0 for _ in range(10)]
    for name in ("alie", "ipm"):
        out = craft(name, honest, [2, 5, 7], seed=3)
        for i, j in ((2, 5), (2, 7), (5, 7)):
            assert rel_sq_dist(out[j], out[i]) > 0.05
        base = ipm(honest, 1.0) if name == "ipm" else alie(honest, alie_z(10, 3))
        assert abs(rel_sq_dist(out[2], base) - JITTER**2) < 0.01
    assert torch.equal(jitter(honest[0], 0.0, 1), honest[0])


def test_free_riders_replay_the_market_history() -> None:
    gen = torch.Generator().manual_seed(12345)  # not a seed the attacks draw their noise with
    step = torch.randn(4000, generator=gen)
    previous = tuple(torch.randn(4000, generator=gen) * (k + 1) for k in range(4))
    h = History(step, previous, norm=30.0)
    s = free_rider_step(h.step, h.norm, seed=0)
    assert abs(float(s.norm()) / 30.0 - (1 + FREE_RIDER_NOISE**2) ** 0.5) < 0.02
    assert float(torch.nn.functional.cosine_similarity(s, step, dim=0)) > 0.95
    stale = free_rider_stale(list(previous), seed=0)
    scaled = free_rider_scaled(list(previous), seed=0)
    assert min(rel_sq_dist(scaled, SHRINK * p) for p in previous) == pytest.approx(GRIEF_NOISE**2, rel=0.1)
    assert min(rel_sq_dist(stale, p) for p in previous) == pytest.approx(FREE_RIDER_NOISE**2, abs=0.01)
    peer = free_rider_peer(list(previous), seed=0)  # the mean, at the median norm, plus noise
    mean = torch.stack(previous).mean(0)
    assert float(torch.nn.functional.cosine_similarity(peer, mean, dim=0)) > 0.95
    median = float(torch.tensor([float(p.norm()) for p in previous]).median())  # torch's lower median: 2 x
    assert abs(float(peer.norm()) / median - (1 + FREE_RIDER_NOISE**2) ** 0.5) < 0.02
    mix = free_rider_mix(step, list(previous), 30.0, seed=0)
    assert abs(float(mix.norm()) / 30.0 - (1 + FREE_RIDER_NOISE**2) ** 0.5) < 0.02
    assert not torch.equal(mix, free_rider_mix(step, list(previous), 30.0, seed=1))
    assert float(free_rider_step(torch.zeros(4000), 30.0, seed=0).norm()) < 30.0 * FREE_RIDER_NOISE * 1.1  # nothing to replay
    zeros = [torch.zeros(4000)] * 3
    out = craft("free_rider_step", [previous[0], *zeros], [1, 2, 3], seed=0, history=h)
    assert out[0] is previous[0] and rel_sq_dist(out[2], out[1]) > 0.05  # two step free riders are no copies
    with pytest.raises(ConfigError, match="history"):
        craft("free_rider_mix", [previous[0], *zeros], [1], seed=0)  # round 1: nothing to replay
    with pytest.raises(ConfigError, match="validation direction"):
        craft("free_rider_direction", [previous[0], *zeros], [1], seed=0, history=h)  # a history without it
    direction = torch.randn(4000, generator=gen)
    out = craft("free_rider_direction", [previous[0], *zeros], [1], seed=0, history=History(step, previous, 30.0, direction))
    assert float(torch.nn.functional.cosine_similarity(out[1], direction, dim=0)) > 0.95
    assert abs(float(out[1].norm()) / 30.0 - (1 + FREE_RIDER_NOISE**2) ** 0.5) < 0.02
    with pytest.raises(ConfigError, match="trained on the validation split"):
        craft("free_rider_split", [previous[0], *zeros], [1], seed=0, history=h)  # a history without it
    trained = torch.randn(4000, generator=gen)
    out = craft("free_rider_split", [previous[0], *zeros], [1], seed=0,
                history=History(step, previous, 30.0, direction, trained))
    assert float(torch.nn.functional.cosine_similarity(out[1], trained, dim=0)) > 0.95
    assert abs(float(out[1].norm()) / 30.0 - (1 + FREE_RIDER_NOISE**2) ** 0.5) < 0.02


def test_the_own_replayer_trains_once_then_replays_its_own_last_update_at_the_median_norm() -> None:
    gen = torch.Generator().manual_seed(4321)
    honest = [torch.randn(3000, generator=gen) for _ in range(4)]
    first = craft("free_rider_own", honest, [1, 3], seed=0)  # its first round: the honest update
    assert first[1] is honest[1] and first[3] is honest[3]
    mine = [torch.randn(3000, generator=gen), None]  # attacker 0 published before, attacker 1 did not
    out = craft("free_rider_own", honest, [1, 3], seed=0, mine=mine)
    assert rel_sq_dist(out[1], mine[0]) == pytest.approx(GRIEF_NOISE**2, rel=0.1) and out[3] is honest[3]
    assert not torch.equal(out[1], mine[0])  # a new commitment
    assert out[0] is honest[0] and out[2] is honest[2]
    h = History(torch.zeros(3000), (honest[0],), 7.0)  # from round 2 on: at the previous round's median norm
    scaled = craft("free_rider_own", honest, [1, 3], seed=0, history=h, mine=mine)[1]
    assert float(torch.nn.functional.cosine_similarity(scaled, mine[0], dim=0)) > 0.99
    assert float(scaled.norm()) == pytest.approx(7.0 * (1 + GRIEF_NOISE**2) ** 0.5, rel=1e-3)


def test_names_import_without_torch() -> None:
    code = "import sys, market.ml.attacks as a; assert a.ATTACKS and 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
