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
The line measure (`*_line`: the largest signed squared cosine with another trainer's source of the 4 rounds before,
the clause `LINE_PCT = 90` of ReplayChallenge) on clean runs (2026-12-05; min, p5, median, max): alpha 0.5 (the
eval's) 0.008, 0.038, 0.144, 0.501; `--alpha 0.1` (each trainer's data nearly one class) 0.025, 0.055, 0.168, 0.806;
`--alpha 0.03` max 0.674; `--alpha 100` (IID) 0.008, 0.034, 0.151, 0.478. `free_rider_scaled` (a source shrunk to
0.6): its line measure 0.846 to 1.0 (median 1.0) over the three alphas, its cross distance 0.29 to 0.44 (median 0.44:
beyond REPLAY_PCT). Honest own distances at alpha 0.1 and 100: 0.034, 0.049, 0.184, 0.739 and 0.0125, 0.023, 0.066,
5.16; honest cross 0.757, 1.212, 2.151, 6.07 and 1.004, 1.260, 1.782, 6.88. An honest trainer's update lies closer to
its own last one than any rider's noise would put a replay of it, so an own replay (`free_rider_own`) cannot be told
from the update its author would have trained.

`--noise 0.45,0.6,1.0` instead runs `free_rider_stale` with noise of that fraction of the norm (2 and 3 of 10, seeds 0
to 2) and prints, per run, the rider's share ratio (`free_rider_ratio`), its updates taken out and the honest ones
taken out. Measured (2026-12-04): noise 0.45: 0.16 to 0.83 (11 to 20 of 18 or 27 riders' updates taken out; some
replay a rider's own taken-out update, which is no source); 0.6: 0.16 to 1.06 (0 to 3 taken out); 1.0: 0.00 to 0.66
(0 to 4); honest updates taken out: 0 in every run; the same figures on 2026-12-05, with the line clause. A replay
with noise beyond half its norm passes the rule: open.

Run: `.venv/bin/python scripts/replays.py` (about half a minute on two cores; `--attacks` to choose; `--alpha` for
another split; `--noise`, about a minute a level).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
from collections.abc import Mapping
from typing import Any

import torch

import aggregator.eval.evaluate as evaluate
import market.ml.attacks as attacks
from aggregator.eval.evaluate import EvalConfig, free_rider_ratio, pick_attackers, simulate
from aggregator.rules.replay import find_replays, replay_terms
from market.protocol.manifest import RuleConfig

#: The measures recorded per update: smallest cross and own distance to the round before, largest line measure to any
#: source of another trainer.
KEYS = ("honest_cross", "honest_own", "honest_line", "attackers_cross", "attackers_own", "attackers_line")
#: Per aggregated round of the running simulation: the round's views by trainer and the sources it was checked with.
SEEN: list[tuple[dict[int, torch.Tensor], dict[tuple[int, int], torch.Tensor]]] = []


def recording(now: Mapping[int, torch.Tensor], sources: Mapping[tuple[int, int], torch.Tensor]) -> dict[int, tuple[int, int]]:
    """`evaluate.find_replays`, recording what it was given."""
    SEEN.append((dict(now), dict(sources)))
    return find_replays(now, sources)


def measure(u: torch.Tensor, w: torch.Tensor) -> float:
    """`|u - w|^2 / min(|u|^2, |w|^2)` (infinite for a zero norm)."""
    dist, nu, nw = replay_terms(u, w)
    return dist / min(nu, nw) if min(nu, nw) else float("inf")


def line(u: torch.Tensor, w: torch.Tensor) -> float:
    """The signed squared cosine `<u, w> |<u, w>| / (|u|^2 |w|^2)`, the line clause's measure (0 for a zero norm)."""
    dist, nu, nw = replay_terms(u, w)
    twice_ip = nu + nw - dist
    return twice_ip * abs(twice_ip) / (4 * nu * nw) if nu and nw else 0.0


def job(args: tuple[int, str, float]) -> dict[str, Any]:
    """One simulation: per update from round 2 on, its smallest cross and own measure to the round before."""
    seed, attack, alpha = args
    torch.set_num_threads(1)
    SEEN.clear()
    evaluate.find_replays = recording
    cfg = EvalConfig(seed=seed, workers=1, alpha=alpha)
    task, parts = evaluate._setup(cfg)
    attackers = [] if attack == "clean" else pick_attackers(cfg.n_trainers, 3, seed)
    simulate(task, parts, RuleConfig(), None if attack == "clean" else attack, attackers, cfg)
    out: dict[str, list[float]] = {key: [] for key in KEYS}
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
            lines = [line(u, w) for (_, j), w in sources.items() if j != i]
            if lines:
                out[f"{who}_line"].append(max(lines))
    return {"attack": attack, **out}


def noisy_job(args: tuple[int, int, float]) -> dict[str, Any]:
    """One run of `free_rider_stale` with `noise` times the norm: the rider's share ratio and the updates taken out."""
    seed, count, noise = args
    attacks.free_rider_stale.__defaults__ = (noise,)
    torch.set_num_threads(1)
    cfg = EvalConfig(seed=seed, workers=1)
    task, parts = evaluate._setup(cfg)
    attackers = pick_attackers(cfg.n_trainers, count, seed)
    log = simulate(task, parts, RuleConfig(), "free_rider_stale", attackers, cfg)
    return {"noise": noise, "count": count, "seed": seed, "share_ratio": round(free_rider_ratio(log), 3),
            "riders_taken_out": len(log.taken_out(honest=False)), "honest_taken_out": len(log.taken_out())}


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
    parser.add_argument("--noise", default="", help="noise levels of a free_rider_stale study (comma-separated)")
    parser.add_argument("--alpha", type=float, default=EvalConfig.alpha, help="the Dirichlet split's alpha (large: IID)")
    args = parser.parse_args()
    if args.noise:
        study = [(s, c, float(x)) for x in args.noise.split(",") for c in (2, 3) for s in map(int, args.seeds.split(","))]
        with multiprocessing.get_context("fork").Pool(2) as pool:
            print(json.dumps(pool.map(noisy_job, study), indent=1))
        return
    jobs = [(s, a, args.alpha) for s in map(int, args.seeds.split(",")) for a in args.attacks.split(",")]
    with multiprocessing.get_context("fork").Pool(2) as pool:
        runs = pool.map(job, jobs)
    table = {attack: {key: summary([x for r in runs if r["attack"] == attack for x in r[key]])
                      for key in KEYS}
             for attack in args.attacks.split(",")}
    print(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
