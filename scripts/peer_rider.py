"""Issue 13: what a free rider that submits the mean of the others' reveals takes, with and without sealed rounds.

Before rounds were sealed a trainer revealed in the window it committed in, so a rider that committed last read
every other update of the round first and submitted their mean (at their median norm, plus noise), training
nothing (`unsealed` below). Since PROTOCOL §3 opens a round's reveals only once its commits close, the updates
revealed before its commit are the previous round's: `free_rider_peer` of `market.ml.attacks`, as the eval plays
it (`sealed`). Per seed and rider count (1 and 3 of 10, digits, the eval's simulation): the best-paid rider's
mean share over the honest mean share from round 2 on (`free_rider_share_ratio`'s measure, target 0.5), the
riders' share of the budget and the accuracy drop in points against the clean run.

Measured (2026-12-04): unsealed ratio 2.0 / 3.475 (seed 0, 1 / 3 riders), 1.86 / 3.206 (seed 1), 2.478 / 6.118
(seed 2), 3 riders taking 0.553 to 0.69 of the budget; sealed 0.0 / 0.434, 0.449 / 0.586, 0.0 / 0.555, 3 riders
taking 0.128 to 0.156 (fair 0.3).
Run: `.venv/bin/python scripts/peer_rider.py` (about 1 min; 2.5 min beside the test suite).
"""

from __future__ import annotations

import json

import torch

import market.ml.attacks as attacks
from aggregator.eval.evaluate import (
    EvalConfig,
    _setup,
    default_rules,
    free_rider_ratio,
    pick_attackers,
    reward_share,
    simulate,
)
from market.ml.attacks import AttackContext


def unsealed(ctx: AttackContext) -> torch.Tensor:
    """The mean of the round's other updates (every one revealed before the rider's commit), as `free_rider_peer`."""
    return attacks.free_rider_peer([u for u in ctx.cloud if float(u.norm()) > 0], ctx.seed)


def main() -> None:
    """Print one JSON object: per protocol, seed and rider count, the ratio, the riders' share and the drop."""
    attacks.ATTACKS["free_rider_peer_unsealed"] = attacks.Attack(
        "the mean of the round's reveals", unsealed, solo=False, trains=False, free_rider=True)
    out: dict[str, dict[str, float]] = {}
    for seed in (0, 1, 2):
        cfg = EvalConfig(seed=seed)
        task, parts = _setup(cfg)
        rule = next(iter(default_rules().values()))
        clean = simulate(task, parts, rule, None, [], cfg).accuracy
        for name, attack in (("unsealed", "free_rider_peer_unsealed"), ("sealed", "free_rider_peer")):
            for k in (1, 3):
                log = simulate(task, parts, rule, attack, pick_attackers(cfg.n_trainers, k, seed), cfg)
                out[f"{name}/{k}/seed{seed}"] = {"ratio": round(free_rider_ratio(log), 3),
                                                 "share": round(reward_share(log), 3),
                                                 "drop_points": round(100 * (clean - log.accuracy), 2)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
