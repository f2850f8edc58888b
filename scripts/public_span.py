"""How much of each update lies off the public span of v and the previous step (PROTOCOL §3's public-span screen).

Every trainer knows the validation direction v and the previous proven step s before it commits, so an update along
them carries nothing the market did not have. This runs the eval's simulation (digits, 10 non-IID trainers, 3
attackers, seeds 0 to 2, 10 rounds) and records, for every submitted update from round 2 on, its share of squared norm
off span{v, s} (`aggregator.rules.screen.residuals`, as a fraction), split into honest trainers and attackers, with
the protocol's screen in place (so these are the updates the screen saw, before it decided).

Measured (2026-12-04, with the screen in place): honest updates 0.302 to 1.0 (5th percentile 0.53, median 0.81, 1,475
trainer-rounds); the direction rider 0.053 to 0.065 and the resent step 0.054 to 0.064 (the screen's threshold is 40 %
of the round's lower median, about 0.32), the split rider 0.16 to 0.90 (median 0.32), the mix 0.065 to 0.47 (median
0.17), the peer mean 0.054 to 0.46 (median 0.17), the stale replay 0.28 to 0.98 (median 0.68: a replay is no
combination of v and s), ALIE 0.11 to 0.89, IPM 0.19 to 0.83, label flipping 0.30 to 0.93.

Run: `.venv/bin/python scripts/public_span.py` (about a minute on two cores; `--attacks` to choose).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
from typing import Any

import torch

import aggregator.eval.evaluate as evaluate
from aggregator.eval.evaluate import EvalConfig, pick_attackers, simulate
from aggregator.rules.screen import RESIDUAL_BITS, residuals
from aggregator.rules.shapley import inner_products
from market.protocol.manifest import RuleConfig

#: One list of residual fractions per aggregated round of the running simulation.
SEEN: list[list[float]] = []
_aggregate = evaluate.aggregate_round


def recording(U_view: torch.Tensor, U_full: torch.Tensor, v: torch.Tensor, g_prev: torch.Tensor, *args: Any,
              **kwargs: Any) -> Any:
    """`evaluate.aggregate_round`, recording each update's residual off span{v, s} first."""
    step = kwargs.get("step")
    s = torch.zeros_like(v) if step is None else step
    vv, vs, ss = (inner_products(x[None, :], y)[0] for x, y in ((v, v), (v, s), (s, s)))
    nsq = [int(x) for x in (U_view * U_view).sum(1).tolist()]
    res = residuals(nsq, inner_products(U_view, v), inner_products(U_view, s), vv, vs, ss)
    SEEN.append([r / (1 << RESIDUAL_BITS) for r in res])
    return _aggregate(U_view, U_full, v, g_prev, *args, **kwargs)


def job(args: tuple[int, str]) -> dict[str, Any]:
    """One simulation: the residuals of its honest trainers and of its attackers, from round 2 on."""
    seed, attack = args
    torch.set_num_threads(1)
    SEEN.clear()
    evaluate.aggregate_round = recording
    cfg = EvalConfig(seed=seed, workers=1)
    task, parts = evaluate._setup(cfg)
    attackers = [] if attack == "clean" else pick_attackers(cfg.n_trainers, 3, seed)
    log = simulate(task, parts, RuleConfig(), None if attack == "clean" else attack, attackers, cfg)
    honest: list[float] = []
    bad: list[float] = []
    for r, (who, res) in enumerate(zip([p for p in log.present if p], SEEN)):
        if r:
            for i, x in zip(who, res):
                (bad if i in attackers else honest).append(x)
    return {"seed": seed, "attack": attack, "honest": honest, "attackers": bad}


def summary(xs: list[float]) -> dict[str, float] | None:
    """Min, 5th percentile, median and max, rounded."""
    if not xs:
        return None
    s = sorted(xs)
    return {"min": round(s[0], 3), "p5": round(s[len(s) // 20], 3), "median": round(s[len(s) // 2], 3),
            "max": round(s[-1], 3), "n": len(s)}


def main() -> None:
    """Print one JSON object: per attack, the honest and attacking updates' residuals, and all honest ones."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attacks", default="clean,free_rider_direction,free_rider_split,free_rider_step,"
                        "free_rider_stale,free_rider_mix,free_rider_peer,alie,ipm,label_flip")
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    jobs = [(s, a) for s in map(int, args.seeds.split(",")) for a in args.attacks.split(",")]
    with multiprocessing.get_context("fork").Pool(2) as pool:
        runs = pool.map(job, jobs)
    out: dict[str, Any] = {}
    for attack in args.attacks.split(","):
        mine = [r for r in runs if r["attack"] == attack]
        out[attack] = {"honest": summary([x for r in mine for x in r["honest"]]),
                       "attackers": summary([x for r in mine for x in r["attackers"]])}
    out["all_honest"] = summary([x for r in runs for x in r["honest"]])
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
