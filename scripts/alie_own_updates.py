"""Issue 13, research: what ALIE and IPM take when the colluders know only their own updates, not the round's.

The eval's ALIE and IPM (market.ml.attacks) see every honest update of the round. On chain they could while a
trainer revealed in the window it committed in: colluders who committed last read the others' reveals first. A
round that opens reveals only once every slot has committed (or its commit window has closed), as PROTOCOL §3's
sealed rounds now do, leaves them their own updates, as in Baruch et al.'s original ALIE. This script measures it:
the eval's simulation (digits, 10 non-IID trainers, 3 colluders, 10 rounds) with both attacks as the eval has them
and with mean and std taken over the colluders' own honest updates only (`alie_own`, `ipm_own`); per seed the
accuracy drop against the clean run, in points, and the colluders' share of the budget (fair: 0.3).

Measured (2026-12-04): alie 0.449 / 0.504 / 0.62 of the budget on seeds 0 / 1 / 2 (the eval's figures), alie_own
0.443 / 0.409 / 0.428; drops -0.56 / 0.56 / -5.56 and 0.56 / 0.28 / -1.67 points; IPM is excluded by the direction
test either way (share 0). So sealing the round until every commit is in would take ALIE's worst share from 0.62 to
0.44, not to 0.3: the mean of three honest updates is itself better aligned with v than one. The seal was made
since, for the free rider that submits the mean of the round's reveals (`scripts/peer_rider.py`), so on chain the
colluders now have their own updates only; the eval keeps the issue's ALIE, which sees every honest update.
Run: `.venv/bin/python scripts/alie_own_updates.py` (20 s).
"""

from __future__ import annotations

import json

import torch

import market.ml.attacks as attacks
from aggregator.eval.evaluate import EvalConfig, _setup, default_rules, pick_attackers, reward_share, simulate
from market.ml.attacks import AttackContext


def own_alie(ctx: AttackContext) -> torch.Tensor:
    """ALIE over the group's own honest updates (Baruch's z for n and the group's size), jittered as the eval's."""
    return attacks.jitter(attacks.alie(list(ctx.group), attacks.alie_z(ctx.n, max(1, len(ctx.group)))), attacks.JITTER,
                          ctx.seed)


def own_ipm(ctx: AttackContext) -> torch.Tensor:
    """IPM over the group's own honest updates, jittered as the eval's."""
    return attacks.jitter(attacks.ipm(list(ctx.group), attacks.IPM_EPSILON), attacks.JITTER, ctx.seed)


def main() -> None:
    """Print one JSON object: per attack and seed, the accuracy drop in points and the colluders' share."""
    attacks.ATTACKS["alie_own"] = attacks.Attack("ALIE on the group's own updates", own_alie, solo=False)
    attacks.ATTACKS["ipm_own"] = attacks.Attack("IPM on the group's own updates", own_ipm, solo=False)
    out: dict[str, dict[str, float]] = {}
    for seed in (0, 1, 2):
        cfg = EvalConfig(seed=seed)
        task, parts = _setup(cfg)
        rule = next(iter(default_rules().values()))
        colluders = pick_attackers(cfg.n_trainers, 3, seed)
        clean = simulate(task, parts, rule, None, [], cfg).accuracy
        for attack in ("alie", "alie_own", "ipm", "ipm_own"):
            log = simulate(task, parts, rule, attack, colluders, cfg)
            out[f"{attack}/seed{seed}"] = {"drop_points": round(100 * (clean - log.accuracy), 2),
                                           "share": round(reward_share(log), 3)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
