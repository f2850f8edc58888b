"""How far updates lie from earlier updates of other trainers, in the replay rule's measure (PROTOCOL §3).

The measure is `|u - w|^2 / min(|u|^2, |w|^2)`; ReplayChallenge takes an update out when it is at most
REPLAY_PCT / 100 = 0.25 from another trainer's update of an earlier round. This runs the eval's simulation (digits, 10
non-IID trainers, seeds 0 to 2, 10 rounds, the default rule) and records, for every update from round 2 on, its
smallest measure to another trainer's update of the previous round ("cross") and to its own previous update ("own"),
split into honest trainers and attackers, with the challenges in place (so the sources are the updates not taken
out). Clean runs bound the threshold from below for honest trainers; the free riders show what it catches.

Measured (2026-12-04, seeds 0 to 2; min, 5th percentile, median, max): clean honest cross 1.002, 1.253, 1.938, 3.963
(213 trainer-rounds: four times the threshold at the least), honest own 0.023, 0.039, 0.211, 2.441 (164): a trainer's
update near its own last one is no replay, and the rule never compares the two. Attackers' cross: `free_rider_stale`
(noise of a quarter of the norm) 0.057, 0.058, 0.063, 5.27 (the large ones replay an update older than the round
before, which LOOKBACK covers), `grief_replay` (1e-3) 0.0, 0.0, 0.0, 4.53.

Run: `.venv/bin/python scripts/replays.py` (about half a minute on two cores; `--attacks` to choose).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
from collections.abc import Mapping
from typing import Any

import torch

import aggregator.eval.evaluate as evaluate
from aggregator.eval.evaluate import EvalConfig, pick_attackers, simulate
from aggregator.rules.replay import find_replays, replay_terms
from market.protocol.manifest import RuleConfig

#: Per aggregated round of the running simulation: the round's views by trainer and the sources it was checked with.
SEEN: list[tuple[dict[int, torch.Tensor], dict[tuple[int, int], torch.Tensor]]] = []


def recording(now: Mapping[int, torch.Tensor], sources: Mapping[tuple[int, int], torch.Tensor]) -> dict[int, tuple[int, int]]:
    """`evaluate.find_replays`, recording what it was given."""
    SEEN.append((dict(now), dict(sources)))
    return find_replays(now, sources)


def measure(u: torch.Tensor, w: torch.Tensor) -> float:
    """`|u - w|^2 / min(|u|^2, |w|^2)` (infinite for a zero norm)."""
    dist, smaller = replay_terms(u, w)
    return dist / smaller if smaller else float("inf")


def job(args: tuple[int, str]) -> dict[str, Any]:
    """One simulation: per update from round 2 on, its smallest cross and own measure to the round before."""
    seed, attack = args
    torch.set_num_threads(1)
    SEEN.clear()
    evaluate.find_replays = recording
    cfg = EvalConfig(seed=seed, workers=1)
    task, parts = evaluate._setup(cfg)
    attackers = [] if attack == "clean" else pick_attackers(cfg.n_trainers, 3, seed)
    simulate(task, parts, RuleConfig(), None if attack == "clean" else attack, attackers, cfg)
    out: dict[str, list[float]] = {"honest_cross": [], "honest_own": [], "attackers_cross": [], "attackers_own": []}
    for now, sources in SEEN:
        if not sources:
            continue
        last = max(r for r, _ in sources)
        previous = {i: u for (r, i), u in sources.items() if r == last}
        for i, u in now.items():
            who = "attackers" if i in attackers else "honest"
            cross = [measure(u, w) for j, w in previous.items() if j != i]
            if cross:
                out[f"{who}_cross"].append(min(cross))
            if i in previous:
                out[f"{who}_own"].append(measure(u, previous[i]))
    return {"attack": attack, **out}


def summary(xs: list[float]) -> dict[str, float] | None:
    """Min, 5th percentile, median and max, rounded."""
    if not xs:
        return None
    s = sorted(xs)
    return {"min": round(s[0], 4), "p5": round(s[len(s) // 20], 4), "median": round(s[len(s) // 2], 4),
            "max": round(s[-1], 4), "n": len(s)}


def main() -> None:
    """Print one JSON object: per attack, the honest and attacking updates' measures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attacks", default="clean,free_rider_stale,grief_replay")
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    jobs = [(s, a) for s in map(int, args.seeds.split(",")) for a in args.attacks.split(",")]
    with multiprocessing.get_context("fork").Pool(2) as pool:
        runs = pool.map(job, jobs)
    table = {attack: {key: summary([x for r in runs if r["attack"] == attack for x in r[key]])
                      for key in ("honest_cross", "honest_own", "attackers_cross", "attackers_own")}
             for attack in args.attacks.split(",")}
    print(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
