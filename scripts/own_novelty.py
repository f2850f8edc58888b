"""Issue 13, item 3, research: a score that pays nothing for a trainer's replay of its own last update.

`free_rider_own` trains in its first round and from then on resubmits its own last update at the previous round's
median norm, jittered by 1e-3. PROTOCOL §3's replay rule compares only other trainers' updates, on purpose: an honest
update lies 0.0125 to 0.74 from its author's last one (`scripts/replays.py --alpha`), nearer than the noise a rider
would add, so no distance test tells the two apart, and noise is unpaid anyway while the replayed part is paid. Today's
score is the novelty `<v_perp, u_i>`, `v_perp` = v off the previous proven step s (PROTOCOL §3). The statement change
measured here (`own` mode) takes v off span{s, w_i} per slot, `w_i` the same trainer's update accepted in the round
before (none: span{s}, as today), so a slot is paid only for the part of v that neither the market's last step nor its
own last update explains. It would put every slot's `w_i` into the round circuit (n d more private values, committed
as the sources of ReplayChallenge are, and four more products a parameter a slot), so it is measured, not made.

Modes run the eval's simulation (digits, 10 non-IID trainers, 10 rounds, the default rule,
`aggregator.eval.evaluate.simulate`) with the scores replaced; decisions and models are unchanged, so only pay moves:
- `today`: the proven score (first-order Shapley of `<v_perp, u_i>` capped at the accepted median);
- `own`: the same of `<v_perp_i, u_i>` (float64 projections here).
Per free rider of the eval (2 and 3 of 10, seeds 0 to 2) it prints the best-paid rider's share over the honest mean
share from round 2 (`free_rider_share_ratio`), and per mode the proven score's Spearman rho against exact accuracy
Shapley (`shapley_agreement`: 8 trainers, label noise i/8 `graded`, or none `plain`).

Measured (2026-12-05, 2 and 3 of 10, seeds 0 to 2; min to max): `free_rider_own` today 0.74 to 1.30, own 0.21 to
0.44; every other rider at most 0.33 in both modes (`free_rider_peer` 0.33 and 0.32). Rho per seed 0, 1, 2: graded
today 0.970, 0.886, 0.929, own 0.595, 0.048, 0.000; plain today 0.429, 0.738, 0.683, own 0.190, 0.524, 0.024. The
`own` score closes the rider and loses what tells a good trainer from a poor one (it pays how much an update
changed): not made.

Run: `.venv/bin/python scripts/own_novelty.py` (about 10 minutes on two cores; `--attacks`, `--no-rho`).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import torch

import aggregator.eval.evaluate as evaluate
from aggregator.eval.evaluate import EvalConfig, free_rider_ratio, pick_attackers, simulate
from aggregator.rules.clip import contribution_scores
from aggregator.rules.replay import find_replays
from aggregator.rules.round import RoundOutcome, aggregate_round
from market.ml.attacks import ATTACKS
from market.protocol.manifest import RuleConfig

#: What the patched round functions share within one simulation: the mode, the round's views by trainer and those
#: taken out, and each trainer's last accepted view.
STATE: dict[str, Any] = {"mode": "today", "views": {}, "taken": {}, "own": {}}


def off_span(v: torch.Tensor, basis: Sequence[torch.Tensor]) -> torch.Tensor:
    """`v` minus its orthogonal projection on the span of `basis` (float64 Gram-Schmidt; zero vectors and vectors
    already in the span add nothing)."""
    q: list[torch.Tensor] = []
    for b in basis:
        b = b.clone()
        for e in q:
            b -= (b @ e) * e
        size = float(b.norm())
        if size > 1e-9 * max(1.0, float(v.norm())):
            q.append(b / size)
    out = v.clone()
    for e in q:
        out -= (out @ e) * e
    return out


def own_novel(U: torch.Tensor, v: torch.Tensor, step: torch.Tensor | None, own: Sequence[torch.Tensor | None]) -> list[int]:
    """Per row i of the views U, `<v off span{s, w_i}, u_i>` floored; `own[i]` is w_i (None: span{s} alone)."""
    vf = v.to(torch.float64)
    s = [] if step is None or not bool(step.any()) else [step.to(torch.float64)]
    return [int(torch.floor(off_span(vf, s + ([] if w is None else [w])) @ row))
            for row, w in zip(U.to(torch.float64), own)]


def recording(now: Mapping[int, torch.Tensor], sources: Mapping[tuple[int, int], torch.Tensor]) -> dict[int, tuple[int, int]]:
    """`evaluate.find_replays`, keeping the round's views by trainer (`aggregate_round` gets them in this order)."""
    taken = find_replays(now, sources)
    STATE["views"], STATE["taken"] = dict(now), taken
    return taken


def rescored(U_view: torch.Tensor, U_full: torch.Tensor, v: torch.Tensor, g_prev: torch.Tensor, *args: Any,
             **kwargs: Any) -> RoundOutcome:
    """`aggregate_round`, with the `own` mode's scores; each accepted view becomes its trainer's `w` for later rounds."""
    out = aggregate_round(U_view, U_full, v, g_prev, *args, **kwargs)
    views = STATE["views"]
    who = [i for i in views if i not in STATE["taken"]] if views else list(range(U_view.shape[0]))
    if STATE["mode"] == "own":
        inner = own_novel(U_view, v, kwargs.get("step"), [STATE["own"].get(i) for i in who])
        out = replace(out, inner=inner, scores=contribution_scores(inner, out.accepted))
    STATE["own"].update({i: row.to(torch.float64) for i, row, f in zip(who, U_view, out.flags) if f == 0})
    return out


def fresh(mode: str) -> None:
    """A new simulation in `mode`: nothing recorded yet."""
    torch.set_num_threads(1)
    STATE.update(mode=mode, views={}, taken={}, own={})
    evaluate.find_replays, evaluate.aggregate_round = recording, rescored


def rider_job(args: tuple[str, str, int, int]) -> dict[str, Any]:
    """One run of a free rider: the best-paid rider's share ratio from round 2."""
    mode, attack, seed, count = args
    fresh(mode)
    cfg = EvalConfig(seed=seed, workers=1)
    task, parts = evaluate._setup(cfg)
    log = simulate(task, parts, RuleConfig(), attack, pick_attackers(cfg.n_trainers, count, seed), cfg)
    return {"mode": mode, "attack": attack, "ratio": free_rider_ratio(log)}


def rho_job(args: tuple[str, int]) -> dict[str, Any]:
    """Spearman rho of the mode's scores against exact accuracy Shapley, graded and plain trainers."""
    mode, seed = args
    cfg = EvalConfig(seed=seed, workers=1)
    task, _ = evaluate._setup(cfg)
    plain, graded = evaluate.shapley_trainers(task, cfg)
    out: dict[str, Any] = {"mode": mode, "seed": seed}
    for name, parts in (("graded", graded), ("plain", plain)):
        fresh(mode)
        out[name] = evaluate.shapley_agreement(task, parts, cfg)["rho"]
    return out


def main() -> None:
    """Print one JSON object: per mode, each free rider's worst and best ratio, and rho per seed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    riders = ",".join(name for name, a in ATTACKS.items() if a.free_rider)
    parser.add_argument("--attacks", default=riders)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--no-rho", action="store_true", help="skip the Shapley agreement (the slow part)")
    args = parser.parse_args()
    modes, seeds = ("today", "own"), [int(s) for s in args.seeds.split(",")]
    jobs = [(m, a, s, c) for m in modes for a in args.attacks.split(",") for s in seeds for c in (2, 3)]
    with multiprocessing.get_context("fork").Pool(2) as pool:
        runs = pool.map(rider_job, jobs)
        rhos = [] if args.no_rho else pool.map(rho_job, [(m, s) for m in modes for s in seeds])
    table: dict[str, Any] = {}
    for m in modes:
        ratios = {a: [r["ratio"] for r in runs if r["mode"] == m and r["attack"] == a] for a in args.attacks.split(",")}
        table[m] = {"free_rider_share_ratio": {a: [round(min(x), 3), round(max(x), 3)] for a, x in ratios.items()},
                    "rho": {k: [round(r[k], 3) for r in rhos if r["mode"] == m] for k in ("graded", "plain")}}
    print(json.dumps(table, indent=1).replace("\n   ", " ").replace("\n  ]", "]"))


if __name__ == "__main__":
    main()
