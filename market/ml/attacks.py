"""Attacks for evaluating the outlier rule and the scores; attackers' honest counterparts stay non-IID.

`ATTACKS` is the one table of attacks, read by the evaluation (`craft`), the trainer daemon
(`TrainerNode`) and the CLI's help. Each attack turns an `AttackContext` (what the attacker knows
in a round) into its update, so every caller gets the same parameters: sign flip and collusion
boost by 2, scaling multiplies by the number of trainers n, gaussian noise has
sigma = 2 |honest| / sqrt(d) (about twice the attacker's own honest norm).

Adaptive group attacks know every honest update of the round and stay inside the honest cloud:
"a little is enough" (ALIE, Baruch et al. 2019) sends mean - z std per coordinate with z from the
paper's formula for n trainers and m colluders, inner-product manipulation (IPM, Xie et al. 2020)
sends -IPM_EPSILON times the mean. Each colluder adds its own jitter of JITTER times the norm, so
that no two are copies under PROTOCOL §3's copy screen (5 % relative squared distance: two
jittered colluders are about 2 JITTER**2 = 12.5 % apart).

Free riders of honest size train nothing and replay what the market already has: the last global
step g(r-1) - g(r-2), a previous round's update, or a mix of these, rescaled to the median norm of
the previous round's submissions, plus FREE_RIDER_NOISE times that norm of noise. They need the
market's history (`History`), so they are absent in round 1 and the trainer daemon, which does not
give them one, does not offer them. One more needs no update at all: every project publishes its
validation split (PROTOCOL §4), so minus the validation-loss gradient at g(r-1), the direction the
scores measure, is known before a round; `free_rider_direction` submits it, and `free_rider_split` submits the
update that the project's local training makes on that split: an honest trainer's procedure on the owner's own data,
which brings the market nothing it did not have. The transformations below are pure. This module imports torch
only inside its functions, so that reading the names (`fedmarket --help`) stays fast.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING

from market.errors import ConfigError

if TYPE_CHECKING:
    import torch

    from market.ml.tasks.base import Split

#: Boost of the sign-flip and collusion attacks.
BOOST = 2.0
#: IPM's epsilon: -1 x the honest mean, a step of honest size straight against the honest direction.
IPM_EPSILON = 1.0
#: Each ALIE or IPM colluder's own jitter, as a fraction of its update's norm (copies are within 5 %).
JITTER = 0.25
#: A free rider's noise, as a fraction of the norm it rescales to (enough that two are not copies).
FREE_RIDER_NOISE = 0.25
#: The griefer's jitter: only enough that its commitment is new; its replay stays within 1e-6 of the original in the
#: copy rule's relative squared distance, and an honest update near its own last one then lies within the rule too.
GRIEF_NOISE = 1e-3
#: The scaled rider's factor: a copy shrunk to 0.6 lies 0.44 from its source in the copy rule's measure, beyond
#: REPLAY_PCT, and about where its source's author's next update lies as honest norms shrink.
SHRINK = 0.6


def sign_flip(update: torch.Tensor, boost: float = 1.0) -> torch.Tensor:
    """Move against the learning direction: `-boost * update`."""
    return -boost * update


def scaling(update: torch.Tensor, factor: float) -> torch.Tensor:
    """Model replacement: the update boosted by `factor` (about n, to survive averaging)."""
    return factor * update


def gaussian_noise(like: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    """Pure noise N(0, sigma**2) in place of an update."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    return sigma * torch.randn(like.shape, generator=gen, dtype=torch.float32)


def label_flip(data: Split, num_classes: int) -> Split:
    """Data poisoning: label c becomes num_classes - 1 - c (then train honestly on it)."""
    from market.ml.tasks.base import Split

    return Split(data.x, num_classes - 1 - data.y)


def free_rider_zero(like: torch.Tensor) -> torch.Tensor:
    """A free rider that trains nothing and submits a zero update."""
    import torch

    return torch.zeros_like(like)


def free_rider_copy(victim_update: torch.Tensor, seed: int, rel_noise: float = 1e-3) -> torch.Tensor:
    """A free rider copying another trainer's update, jittered so that its commitment differs."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    jitter = torch.randn(victim_update.shape, generator=gen, dtype=torch.float32)
    return victim_update + rel_noise * float(victim_update.abs().max()) * jitter


def collusion(group_updates: list[torch.Tensor], boost: float) -> torch.Tensor:
    """A colluding group's common update: minus `boost` times the mean of the members' honest updates."""
    import torch

    return -boost * torch.stack(group_updates).mean(dim=0)


def jitter(update: torch.Tensor, rel: float, seed: int) -> torch.Tensor:
    """`update` plus gaussian noise of norm about `rel * |update|` (drawn with `seed`)."""
    return update + gaussian_noise(update, rel * float(update.norm()) / update.numel() ** 0.5, seed)


def alie_z(n: int, m: int) -> float:
    """Baruch et al.'s z_max for m colluders among n: with s = floor(n / 2 + 1) - m honest supporters
    needed for a majority, z = Phi^-1((n - s) / n); s is at least 1 (colluders who are a majority, as
    when ejections leave few trainers, need no supporters), and z = 0 when n = 1."""
    s = max(1, n // 2 + 1 - m)
    return NormalDist().inv_cdf((n - s) / n) if n > s else 0.0


def alie(cloud: list[torch.Tensor], z: float) -> torch.Tensor:
    """A little is enough: mean - z * std of the honest updates, per coordinate (population std)."""
    import torch

    stacked = torch.stack(cloud)
    return stacked.mean(dim=0) - z * stacked.std(dim=0, correction=0)


def ipm(cloud: list[torch.Tensor], epsilon: float) -> torch.Tensor:
    """Inner-product manipulation: -epsilon times the mean of the honest updates."""
    import torch

    return -epsilon * torch.stack(cloud).mean(dim=0)


def rescaled(direction: torch.Tensor, norm: float) -> torch.Tensor:
    """`direction` scaled to `norm`; a zero direction (a round that accepted nobody) stays zero."""
    size = float(direction.norm())
    return direction * (norm / size) if size else direction.clone()


def free_rider_step(step: torch.Tensor, norm: float, seed: int, rel_noise: float = FREE_RIDER_NOISE) -> torch.Tensor:
    """The market's last step rescaled to `norm`, plus noise of norm about `rel_noise * norm`."""
    base = rescaled(step, norm)
    return base + gaussian_noise(base, rel_noise * norm / base.numel() ** 0.5, seed)


def pick_previous(previous: list[torch.Tensor], seed: int) -> torch.Tensor:
    """One of the previous round's updates, drawn with `seed` (the replaying riders' choice)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    return previous[int(torch.randint(len(previous), (1,), generator=gen))]


def free_rider_stale(previous: list[torch.Tensor], seed: int, rel_noise: float = FREE_RIDER_NOISE) -> torch.Tensor:
    """One of the previous round's updates (its own or another's, picked with `seed`), plus noise of
    norm about `rel_noise` times its own."""
    return jitter(pick_previous(previous, seed), rel_noise, seed + 1)


def free_rider_scaled(previous: list[torch.Tensor], seed: int, scale: float = SHRINK) -> torch.Tensor:
    """One of the previous round's updates (picked with `seed`) times `scale`, jittered by `GRIEF_NOISE`."""
    return jitter(pick_previous(previous, seed) * scale, GRIEF_NOISE, seed + 1)


def rel_sq_dist(a: torch.Tensor, b: torch.Tensor) -> float:
    """PROTOCOL §3's copy measure of `a` against the earlier `b`: |a - b|^2 / |b|^2 (infinite for a zero `b`)."""
    base = float(b.double().pow(2).sum())
    return float((a.double() - b.double()).pow(2).sum()) / base if base else float("inf")


def grief_replay(history: History, rank: int, seed: int, rel_noise: float = GRIEF_NOISE) -> torch.Tensor:
    """The last update of the trainer whose last two updates lie closest in the copy rule's measure (the `rank`-th
    closest, so that a group aims at distinct trainers), jittered by `rel_noise`: that trainer's next update is the
    likeliest to fall within the rule of its last. A random previous update while nobody has published two."""
    if not history.pairs:
        return free_rider_stale(list(history.previous), seed, rel_noise)
    aimed = sorted(history.pairs, key=lambda pair: rel_sq_dist(pair[0], pair[1]))
    return jitter(aimed[rank % len(aimed)][0], rel_noise, seed + 1)


def free_rider_mix(
    step: torch.Tensor, previous: list[torch.Tensor], norm: float, seed: int, rel_noise: float = FREE_RIDER_NOISE
) -> torch.Tensor:
    """A random convex mix (weights uniform, then normalised) of the last step and the previous round's
    updates, each first rescaled to `norm`; the mix rescaled to `norm`, plus noise of norm about `rel_noise * norm`."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    parts = torch.stack([rescaled(x, norm) for x in (step, *previous)])
    weights = torch.rand(len(parts), generator=gen, dtype=torch.float32)
    return free_rider_step((weights / weights.sum()) @ parts, norm, seed + 1, rel_noise)


def free_rider_peer(revealed: list[torch.Tensor], seed: int, rel_noise: float = FREE_RIDER_NOISE) -> torch.Tensor:
    """The mean of the updates revealed before the rider commits, at their median norm, plus noise of norm about
    `rel_noise` times it. A round's reveals open only once its commits close (PROTOCOL §3), so these are the
    previous round's (0 to 0.59 honest shares); with a round's own reveals readable first it took 1.9 to 6.1
    (`scripts/peer_rider.py`)."""
    import torch

    norm = float(torch.tensor([float(u.norm()) for u in revealed]).median())
    return free_rider_step(torch.stack(revealed).mean(0), norm, seed, rel_noise)


@dataclass(frozen=True)
class History:
    """What the market has published before a round, from round 2 on: `step` the last global step
    g(r-1) - g(r-2) (flat, full model), `previous` the updates submitted in the previous round (as
    published, any order), `norm` the median of their norms, `direction` minus the validation-loss
    gradient at g(r-1) and `split_update` the project's local training on the validation split from g(r-1) (both
    flat, full model; anyone computes them from the published validation split). `pairs` holds, for each trainer
    outside the attackers' group with two published updates, its last one and the one before (reveals name their
    trainer): what a griefer aims with."""

    step: torch.Tensor
    previous: tuple[torch.Tensor, ...]
    norm: float
    direction: torch.Tensor | None = None
    split_update: torch.Tensor | None = None
    pairs: tuple[tuple[torch.Tensor, torch.Tensor], ...] = ()


@dataclass(frozen=True)
class AttackContext:
    """What an attacker knows when it makes its update in a round.

    `honest` is the update it would submit honestly (None for an attack that does not train);
    `n` the number of trainers whose updates are averaged (the trainer daemon, which cannot know
    who else submits, uses the project's slots); `seed` its randomness for this round; `victim`
    an update submitted before its own (copiers); `group` its group's honest updates (collusion;
    its length is the number of colluders); `cloud` every honest update of the round, the group's
    included (ALIE, IPM); `history` what the market published before (free riders of honest size); `rank` its index
    among the round's attackers (a group that aims splits its targets by it).
    """

    honest: torch.Tensor | None
    n: int
    seed: int
    victim: torch.Tensor | None = None
    group: tuple[torch.Tensor, ...] = ()
    cloud: tuple[torch.Tensor, ...] = ()
    history: History | None = None
    rank: int = 0
    mine: torch.Tensor | None = None

    def own(self) -> torch.Tensor:
        """The attacker's honest update; ConfigError if the caller did not train."""
        if self.honest is None:
            raise ConfigError("this attack needs the attacker's honest update")
        return self.honest

    def copied(self) -> torch.Tensor:
        """The victim's update; ConfigError if the caller gave none."""
        if self.victim is None:
            raise ConfigError("this attack needs an update submitted before it (a victim)")
        return self.victim

    def honest_cloud(self) -> list[torch.Tensor]:
        """Every honest update of the round; ConfigError if the caller gave none."""
        if not self.cloud:
            raise ConfigError("this attack needs the round's honest updates (a group attack)")
        return list(self.cloud)

    def past(self) -> History:
        """The market's history; ConfigError in round 1 or when the caller gave none."""
        if self.history is None:
            raise ConfigError("this attack needs the market's history (the last step and the previous round's updates)")
        return self.history


@dataclass(frozen=True)
class Attack:
    """One attack: how it makes its update from the context, and what it needs.

    `poison` turns the attacker's training data (and the number of classes) into what it trains
    on (`label_flip`; its update is then the honest one on that data). `solo`: a single trainer can
    mount it; `trains`: it starts from honest training (a copier does not); `copies`: it needs a
    victim's update; `free_rider`: it seeks pay without work rather than to poison the model;
    `history`: it needs the market's `History`, so it is absent in round 1 (the trainer daemon offers
    only solo attacks without history); `first`: it commits before every honest trainer (it needs
    nothing from the round, so it can commit as the round opens).
    """

    summary: str
    make: Callable[[AttackContext], torch.Tensor]
    poison: Callable[[Split, int], Split] | None = None
    solo: bool = True
    trains: bool = True
    copies: bool = False
    free_rider: bool = False
    history: bool = False
    first: bool = False

    def __call__(self, ctx: AttackContext) -> torch.Tensor:
        """The attacker's update in this round."""
        return self.make(ctx)


def _gaussian(ctx: AttackContext) -> torch.Tensor:
    """Noise with sigma = 2 |honest| / sqrt(d): a norm about twice the attacker's honest one."""
    u = ctx.own()
    return gaussian_noise(u, sigma=BOOST * float(u.norm()) / u.numel() ** 0.5, seed=ctx.seed)


def _alie(ctx: AttackContext) -> torch.Tensor:
    """ALIE with Baruch et al.'s z for n trainers and the group's size, then the colluder's own jitter."""
    return jitter(alie(ctx.honest_cloud(), alie_z(ctx.n, max(1, len(ctx.group)))), JITTER, ctx.seed)


def _direction(ctx: AttackContext) -> torch.Tensor:
    """`free_rider_step` of the published validation direction instead of the last step."""
    h = ctx.past()
    if h.direction is None:
        raise ConfigError("this attack needs the validation direction at g(r-1) in the market's history")
    return free_rider_step(h.direction, h.norm, ctx.seed)


def _split(ctx: AttackContext) -> torch.Tensor:
    """`free_rider_step` of the update trained on the published validation split instead of the last step."""
    h = ctx.past()
    if h.split_update is None:
        raise ConfigError("this attack needs the update trained on the validation split in the market's history")
    return free_rider_step(h.split_update, h.norm, ctx.seed)


def _own_replay(ctx: AttackContext) -> torch.Tensor:
    """The honest update in the attacker's first round; from then on its own last update rescaled to the previous
    round's median norm (when the history gives one), jittered by `GRIEF_NOISE`: it trains once and replays that work
    for ever at the size honest updates have shrunk to (PROTOCOL §3's replay rule compares only other trainers')."""
    if ctx.mine is None:
        return ctx.own()
    size = float(ctx.mine.norm())
    mine = ctx.mine if ctx.history is None or size == 0.0 else ctx.mine * (ctx.history.norm / size)
    return jitter(mine, GRIEF_NOISE, ctx.seed)


def _mix(ctx: AttackContext) -> torch.Tensor:
    """`free_rider_mix` of the market's history."""
    h = ctx.past()
    return free_rider_mix(h.step, list(h.previous), h.norm, ctx.seed)


#: The attacks by name, in the order the evaluation reports them.
ATTACKS: dict[str, Attack] = {
    "sign_flip": Attack("minus twice the honest update", lambda c: sign_flip(c.own(), boost=BOOST)),
    "scaling": Attack("the honest update times n (model replacement)", lambda c: scaling(c.own(), factor=float(c.n))),
    "gaussian": Attack("noise of about twice the honest norm", _gaussian),
    "label_flip": Attack("train on labels c -> C - 1 - c", lambda c: c.own(), poison=label_flip),
    "free_rider_zero": Attack("submit a zero update", lambda c: free_rider_zero(c.own()), free_rider=True),
    # Not solo: the round's reveals open only once every commit is in (PROTOCOL §3), so a lone copier never reads
    # an update of the round before it must commit its own; a colluder given one by its group can.
    "free_rider_copy": Attack("copy an earlier update, jittered", lambda c: free_rider_copy(c.copied(), seed=c.seed),
                              solo=False, trains=False, copies=True, free_rider=True),
    "collusion": Attack("the group's common update: minus twice its mean",
                        lambda c: collusion(list(c.group), boost=BOOST), solo=False),
    "alie": Attack("a little is enough: honest mean - z std (Baruch's z), jittered per colluder", _alie, solo=False),
    "ipm": Attack("inner-product manipulation: minus the honest mean, jittered per colluder",
                  lambda c: jitter(ipm(c.honest_cloud(), IPM_EPSILON), JITTER, c.seed), solo=False),
    "free_rider_step": Attack("from round 2: the last global step at the median norm, plus noise",
                              lambda c: free_rider_step(c.past().step, c.past().norm, c.seed),
                              trains=False, free_rider=True, history=True),
    "free_rider_stale": Attack("from round 2: a previous round's update, plus noise",
                               lambda c: free_rider_stale(list(c.past().previous), c.seed),
                               trains=False, free_rider=True, history=True),
    "free_rider_scaled": Attack("from round 2: a previous round's update shrunk to 0.6, jittered by 1e-3",
                                lambda c: free_rider_scaled(list(c.past().previous), c.seed),
                                trains=False, free_rider=True, history=True),
    "grief_replay": Attack("from round 2: the last update of the trainer whose last two moved least, jittered by "
                           "1e-3 only, committed first, so that its author's next update, near its last, comes later "
                           "and within the copy rule",
                           lambda c: grief_replay(c.past(), c.rank, c.seed),
                           trains=False, free_rider=True, history=True, first=True),
    "free_rider_mix": Attack("from round 2: a random mix of the last step and previous updates, plus noise", _mix,
                             trains=False, free_rider=True, history=True),
    "free_rider_peer": Attack("from round 2: the mean of the updates revealed before its commit (the previous "
                              "round's) at their median norm, plus noise",
                              lambda c: free_rider_peer(list(c.past().previous), c.seed),
                              trains=False, free_rider=True, history=True),
    "free_rider_own": Attack("trains in its first round, then replays its own last update at the median norm, "
                             "jittered by 1e-3",
                             _own_replay, solo=False, free_rider=True),
    "free_rider_direction": Attack("from round 2: the published validation direction at the median norm, plus noise",
                                   _direction, trains=False, free_rider=True, history=True),
    "free_rider_split": Attack("from round 2: local training on the published validation split at the median norm, "
                               "plus noise", _split, trains=False, free_rider=True, history=True),
}
#: Attacks a single trainer can mount on its own with only its own data and round (the trainer daemon's);
#: the evaluation also has group attacks and free riders that replay the market's history.
SOLO_ATTACKS: tuple[str, ...] = tuple(name for name, a in ATTACKS.items() if a.solo and not a.history)


def get_attack(name: str, solo: bool = False) -> Attack:
    """The attack called `name` (among the solo ones if `solo`); ConfigError names the valid choices."""
    choices = SOLO_ATTACKS if solo else tuple(ATTACKS)
    if name not in choices:
        raise ConfigError(f"unknown attack {name!r}; choose one of {', '.join(choices)}")
    return ATTACKS[name]


def craft(
    attack: str, updates: list[torch.Tensor], attackers: list[int], seed: int, history: History | None = None,
    mine: Sequence[torch.Tensor | None] = (),
) -> list[torch.Tensor]:
    """Replace the attackers' honest updates by the attack's, as `ATTACKS` defines it with
    n = len(updates); copiers copy the honest updates in turn, attacker j draws with seed + j; group
    attacks see every update of `updates` as the honest cloud, free riders the market's `history`
    (an attacker that does not train gets no honest update: its row of `updates` is not read), and attacker j its
    own last published update `mine[j]` when given."""
    spec = get_attack(attack)
    out = list(updates)
    honest = [i for i in range(len(updates)) if i not in set(attackers)]
    group = tuple(updates[i] for i in attackers)
    for j, i in enumerate(attackers):
        victim = updates[honest[j % len(honest)]] if spec.copies else None
        own = updates[i] if spec.trains else None
        last = mine[j] if j < len(mine) else None
        out[i] = spec(AttackContext(own, len(updates), seed + j, victim, group, tuple(updates), history, rank=j, mine=last))
    return out
