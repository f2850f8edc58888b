"""Hyper-parameter policy between rounds: keep on improvement, decay on plateau or divergence."""

from __future__ import annotations

from aggregator.eval.hyper import HyperPolicy, HyperState, next_hyper
from market.protocol.manifest import HyperParams

HP = HyperParams(epochs=4, batch_size=16, lr=1.0, seed=0)


def test_improvement_keeps_hyper_parameters() -> None:
    s = next_hyper(HyperState(HP), 2.0)
    assert s == HyperState(HP, 2.0, 0)
    assert next_hyper(s, 1.5) == HyperState(HP, 1.5, 0)


def test_plateau_decays_after_patience() -> None:
    s = HyperState(HP, 1.0, 0)
    s = next_hyper(s, 0.995)  # under 1 % better: stale
    assert s.hp == HP and s.stale_rounds == 1 and s.best_loss == 1.0
    s = next_hyper(s, 1.0)
    assert s.hp.lr == 0.5 and s.hp.epochs == 3 and s.stale_rounds == 0 and s.hp.batch_size == 16


def test_divergence_decays_at_once_and_floors_hold() -> None:
    s = next_hyper(HyperState(HP, 1.0, 0), 2.0)
    assert s.hp.lr == 0.5 and s.hp.epochs == 3
    policy = HyperPolicy(patience=1, min_lr=0.4, min_epochs=3)
    s = next_hyper(next_hyper(HyperState(HP, 1.0, 0), 1.2, policy), 1.2, policy)
    assert s.hp.lr == 0.4 and s.hp.epochs == 3
