"""Hyper-parameters published for the next round, adapted to the owner's validation loss.

Policy (reduce-on-plateau for federated rounds): a round *improves* when the validation loss
falls below `(1 - min_rel_improvement)` times the best loss so far. After `patience` rounds
without improvement the trainers' learning rate is multiplied by `lr_decay` (not below `min_lr`)
and local epochs drop by one (not below `min_epochs`): smaller local steps reduce client drift
on non-IID data. A loss that rises above `divergence_ratio` times the best loss counts as
divergence and triggers the reduction at once. The aggregation itself (PROTOCOL §3) has no
server learning rate: the proven average is applied as is, so only local training adapts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from market.protocol.manifest import HyperParams


@dataclass(frozen=True)
class HyperPolicy:
    """Knobs of the plateau policy."""

    patience: int = 2
    lr_decay: float = 0.5
    min_lr: float = 1e-3
    min_epochs: int = 1
    min_rel_improvement: float = 0.01
    divergence_ratio: float = 1.5


@dataclass(frozen=True)
class HyperState:
    """Current hyper-parameters, best validation loss so far and rounds since the last improvement."""

    hp: HyperParams
    best_loss: float = float("inf")
    stale_rounds: int = 0


def next_hyper(state: HyperState, val_loss: float, policy: HyperPolicy = HyperPolicy()) -> HyperState:
    """The state after observing this round's validation loss."""
    if val_loss < state.best_loss * (1.0 - policy.min_rel_improvement):
        return HyperState(state.hp, val_loss, 0)
    stale = state.stale_rounds + 1
    diverged = val_loss > state.best_loss * policy.divergence_ratio
    if stale < policy.patience and not diverged:
        return HyperState(state.hp, state.best_loss, stale)
    hp = replace(
        state.hp,
        lr=max(policy.min_lr, state.hp.lr * policy.lr_decay),
        epochs=max(policy.min_epochs, state.hp.epochs - 1),
    )
    return HyperState(hp, state.best_loss, 0)
