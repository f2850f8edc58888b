"""How much of each update lies off the public span of v, the previous step and the split step (PROTOCOL §3).

Every trainer knows the validation direction v, the split step h and the previous proven step s before it commits,
so an update along them carries nothing the market did not have. This runs the eval's simulation (digits, 10 non-IID
trainers, 3 attackers, seeds 0 to 2, 10 rounds) and records, for every submitted update from round 2 on, its share of
squared norm off the span (`aggregator.rules.screen.residuals`, as a fraction), split into honest trainers and
attackers, with the protocol's screen in place (so these are the updates the screen saw, before it decided).

`--split-riders` instead runs the clean simulation and, in every round from the second, trains on the published
validation split from g(r-1) as a split rider would (the project's hyper-parameters with another seed, 3 epochs at a
third of the rate, 30 epochs, batches of 64: `market.ml.training.local_update`, float32), and prints each update's
residual over the round's lower median honest residual (the screen excludes below 0.4), off span{v, s, h} (the
protocol) and off span{v, s} (the screen before the split step).

Measured (2026-12-04, `--split-riders`, seeds 0 to 2, 27 rounds, 213 honest trainer-rounds; min, 5th percentile,
median, max over the lower median honest residual): honest updates off span{v, s, h} 0.695, 0.776, 1.0, 1.485 (off
span{v, s}: 0.688, 0.801, 1.0, 1.47); the split riders off span{v, s, h}: another seed 0.008 to 0.015, 3 epochs at
a third of the rate 0.036 to 0.123, 30 epochs 0.043 to 0.076, batches of 64 0.056 to 0.133, all 108 below 0.4; off
span{v, s}: 0.563 to 0.994, 0.277 to 0.649 (10 of 27 below 0.4), 0.578 to 1.035, 0.448 to 0.9.

The measurements below predate the split step (span{v, s}):

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
from dataclasses import replace
from typing import Any

import torch

import aggregator.eval.evaluate as evaluate
from aggregator.eval.evaluate import EvalConfig, pick_attackers, simulate
from aggregator.rules.screen import PUBLIC_PCT, RESIDUAL_BITS, public_span, residuals
from aggregator.rules.shapley import inner_products
from market.ml.tasks import Task
from market.ml.training import local_update
from market.protocol.manifest import RuleConfig
from market.protocol.quant import quantize

#: One list of residual fractions per aggregated round of the running simulation.
SEEN: list[list[float]] = []
_aggregate = evaluate.aggregate_round


def recording(U_view: torch.Tensor, U_full: torch.Tensor, v: torch.Tensor, g_prev: torch.Tensor, *args: Any,
              **kwargs: Any) -> Any:
    """`evaluate.aggregate_round`, recording each update's residual off span{v, s} first."""
    step, split = kwargs.get("step"), kwargs.get("split")
    nsq = [int(x) for x in (U_view * U_view).sum(1).tolist()]
    res = residuals(nsq, *public_span(U_view, v, inner_products(U_view, v), step, split))
    SEEN.append([r / (1 << RESIDUAL_BITS) for r in res])
    if RIDERS is not None:
        RIDERS.append(rider_shares(U_view, v, g_prev, step, split, nsq, res))
    return _aggregate(U_view, U_full, v, g_prev, *args, **kwargs)


#: With `--split-riders`: per aggregated round, {label: residuals over the lower median honest residual}.
RIDERS: list[dict[str, list[float]]] | None = None
TASK: list[Task] = []
#: The split riders' hyper-parameters (changes to the project's), by label.
VARIANTS = {"split_seed": {"seed": 4242}, "split_e3_lr03": {"epochs": 3, "lr": 0.3, "seed": 7},
            "split_e30": {"epochs": 30, "seed": 8}, "split_bs64": {"batch_size": 64, "seed": 9}}


def rider_shares(U_view: torch.Tensor, v: torch.Tensor, g: torch.Tensor, step: torch.Tensor | None,
                 split: torch.Tensor | None, nsq: list[int], res: list[int]) -> dict[str, list[float]]:
    """The honest updates' and each split rider's residual over the lower median honest one, off span{v, s, h}
    (`res`, the protocol's) and off span{v, s}."""
    task, hp, spec = TASK[0], EvalConfig().hp, EvalConfig().spec
    offset, length = task.view()
    riders = torch.stack([quantize(local_update(task.build_model, g, task.val, replace(hp, **kw), torch.device("cpu")),
                                   spec)[offset : offset + length] for kw in VARIANTS.values()])
    rn = [int(x) for x in (riders * riders).sum(1).tolist()]
    out: dict[str, list[float]] = {}
    for span, h, honest in (("vsh", split, res), ("vs", None, None)):
        if honest is None:
            honest = residuals(nsq, *public_span(U_view, v, inner_products(U_view, v), step, h))
        med = sorted(honest)[(len(honest) - 1) // 2] or 1
        out[f"honest_{span}"] = [x / med for x in honest]
        rr = residuals(rn, *public_span(riders, v, inner_products(riders, v), step, h))
        for label, x in zip(VARIANTS, rr):
            out[f"{label}_{span}"] = [x / med]
    return out


def job(args: tuple[int, str]) -> dict[str, Any]:
    """One simulation: the residuals of its honest trainers and of its attackers, from round 2 on."""
    seed, attack = args
    torch.set_num_threads(1)
    SEEN.clear()
    evaluate.aggregate_round = recording
    cfg = EvalConfig(seed=seed, workers=1)
    task, parts = evaluate._setup(cfg)
    TASK[:] = [task]
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
    parser.add_argument("--split-riders", action="store_true", help="the split riders' residuals in clean runs")
    args = parser.parse_args()
    if args.split_riders:
        split_riders([int(x) for x in args.seeds.split(",")])
        return
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


def riders_job(seed: int) -> list[dict[str, list[float]]]:
    """One clean simulation with the split riders measured in every round from the second."""
    global RIDERS
    RIDERS = []
    job((seed, "clean"))
    return RIDERS[1:]


def split_riders(seeds: list[int]) -> None:
    """Print, per label, the residuals over the lower median honest one: min, 5th percentile, median, max."""
    with multiprocessing.get_context("fork").Pool(min(3, len(seeds))) as pool:
        runs = pool.map(riders_job, seeds)
    out: dict[str, list[float]] = {}
    for rounds in runs:
        for row in rounds:
            for label, xs in row.items():
                out.setdefault(label, []).extend(xs)
    print(json.dumps({label: {**(summary(xs) or {}), "below_0.4": sum(x < PUBLIC_PCT / 100 for x in xs)}
                      for label, xs in sorted(out.items())}, indent=2))


if __name__ == "__main__":
    main()
