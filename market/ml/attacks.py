"""Attacks for evaluating the outlier rule and the scores; attackers' honest counterparts stay non-IID.

`ATTACKS` is the one table of attacks, read by the evaluation (`craft`), the trainer daemon
(`TrainerNode`) and the CLI's help. Each attack turns an `AttackContext` (what the attacker knows
in a round) into its update, so every caller gets the same parameters: sign flip and collusion
boost by 2, scaling multiplies by the number of trainers n, gaussian noise has
sigma = 2 |honest| / sqrt(d) (about twice the attacker's own honest norm). The transformations
below are pure. This module imports torch only inside its functions, so that reading the names
(`fedmarket --help`) stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from market.errors import ConfigError

if TYPE_CHECKING:
    import torch

    from market.ml.tasks.base import Split

#: Boost of the sign-flip and collusion attacks.
BOOST = 2.0


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


@dataclass(frozen=True)
class AttackContext:
    """What an attacker knows when it makes its update in a round.

    `honest` is the update it would submit honestly (None for an attack that does not train);
    `n` the number of trainers whose updates are averaged (the trainer daemon, which cannot know
    who else submits, uses the project's slots); `seed` its randomness for this round; `victim`
    an update submitted before its own (copiers); `group` its group's honest updates (collusion).
    """

    honest: torch.Tensor | None
    n: int
    seed: int
    victim: torch.Tensor | None = None
    group: tuple[torch.Tensor, ...] = ()

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


@dataclass(frozen=True)
class Attack:
    """One attack: how it makes its update from the context, and what it needs.

    `poison` turns the attacker's training data (and the number of classes) into what it trains
    on (`label_flip`; its update is then the honest one on that data). `solo`: a single trainer can
    mount it (the trainer daemon offers those); `trains`: it starts from honest training (a copier
    does not); `copies`: it needs a victim's update; `free_rider`: it seeks pay without work rather
    than to poison the model.
    """

    summary: str
    make: Callable[[AttackContext], torch.Tensor]
    poison: Callable[[Split, int], Split] | None = None
    solo: bool = True
    trains: bool = True
    copies: bool = False
    free_rider: bool = False

    def __call__(self, ctx: AttackContext) -> torch.Tensor:
        """The attacker's update in this round."""
        return self.make(ctx)


def _gaussian(ctx: AttackContext) -> torch.Tensor:
    """Noise with sigma = 2 |honest| / sqrt(d): a norm about twice the attacker's honest one."""
    u = ctx.own()
    return gaussian_noise(u, sigma=BOOST * float(u.norm()) / u.numel() ** 0.5, seed=ctx.seed)


#: The attacks by name, in the order the evaluation reports them.
ATTACKS: dict[str, Attack] = {
    "sign_flip": Attack("minus twice the honest update", lambda c: sign_flip(c.own(), boost=BOOST)),
    "scaling": Attack("the honest update times n (model replacement)", lambda c: scaling(c.own(), factor=float(c.n))),
    "gaussian": Attack("noise of about twice the honest norm", _gaussian),
    "label_flip": Attack("train on labels c -> C - 1 - c", lambda c: c.own(), poison=label_flip),
    "free_rider_zero": Attack("submit a zero update", lambda c: free_rider_zero(c.own()), free_rider=True),
    "free_rider_copy": Attack("copy an earlier update, jittered", lambda c: free_rider_copy(c.copied(), seed=c.seed),
                              trains=False, copies=True, free_rider=True),
    "collusion": Attack("the group's common update: minus twice its mean",
                        lambda c: collusion(list(c.group), boost=BOOST), solo=False),
}
#: Attacks a single trainer can mount on its own (the evaluation also has group attacks).
SOLO_ATTACKS: tuple[str, ...] = tuple(name for name, a in ATTACKS.items() if a.solo)


def get_attack(name: str, solo: bool = False) -> Attack:
    """The attack called `name` (among the solo ones if `solo`); ConfigError names the valid choices."""
    choices = SOLO_ATTACKS if solo else tuple(ATTACKS)
    if name not in choices:
        raise ConfigError(f"unknown attack {name!r}; choose one of {', '.join(choices)}")
    return ATTACKS[name]


def craft(attack: str, updates: list[torch.Tensor], attackers: list[int], seed: int) -> list[torch.Tensor]:
    """Replace the attackers' honest updates by the attack's, as `ATTACKS` defines it with
    n = len(updates); copiers copy the honest updates in turn, attacker j draws with seed + j."""
    spec = get_attack(attack)
    out = list(updates)
    honest = [i for i in range(len(updates)) if i not in set(attackers)]
    group = tuple(updates[i] for i in attackers)
    for j, i in enumerate(attackers):
        victim = updates[honest[j % len(honest)]] if spec.copies else None
        out[i] = spec(AttackContext(updates[i], len(updates), seed + j, victim, group))
    return out
