"""Issue 13, item 3, research: can a change to the validation split stop the free riders that use it?

Today every project publishes its whole validation split (PROTOCOL §4), so minus the validation-loss gradient at
g(r-1), which is the round's `v` itself, is known before the round; `free_rider_direction` submits it and is paid 1.62
to 2.68 times an honest trainer's mean share (`fedmarket eval --json`). Any score that pays alignment with a `v` that
anyone computes before committing pays that rider, and one that trains on the published split is an honest trainer's
twin. This script measures, first, the statement change that hides `v`'s data until the round's commits are closed:

- the owner splits its validation set into `rounds + 1` batches and fixes all their digests at creation (the
  manifest); batch 0 is published at once (trainers check their schema and data against it);
- round r's `v` is the gradient on batch r + 1 alone; the owner publishes that batch once the round's commits are
  closed (sealed rounds, PROTOCOL §3), so each trainer recomputes `v` before it reveals, and keeps its reveal when
  `vCommit` is another (a committed but unrevealed slot is absent, unpaid, no stake moved);
- a rider has the public batches only: batch 0 and those of the rounds before.

Modes (the eval's simulation: digits, 10 non-IID trainers, 10 rounds, `aggregator.eval.evaluate.simulate`):
- `public`: the protocol as it is (v and the rider's direction on the whole split);
- `hidden`: v on the round's hidden batch; the rider's direction is the gradient on the public batches; the
  statement is unchanged (novelty off the previous step s);
- `hidden_perp`: `hidden`, with the novelty's v projected off span{s, v_pub} too, v_pub the public batches'
  gradient over the view (float64 least squares here; two vectors, exactly provable in integers like today's one);
- `house`: the whole split published, as today, but v taken at g(r-1) + h, h the project's local training on the
  split (what a rider that trains on it sends): the direction the owner's data still asks for once the model has
  learnt it, so that an update that only repeats h scores little;
- `mse`: the whole split published, as today, but v minus the gradient of half the mean squared distance between
  the logits and the one-hot labels instead of the cross-entropy's: for a linear model two matrix products, which a
  circuit could prove from a committed, secret split without an exponential (the riders here still see the split:
  the mode asks whether such a v still ranks trainers and stops the poisoners).
`free_rider_direction` sends that direction, `free_rider_split` the project's local training on that data (the
honest trainer's procedure on the owner's data); the other free riders replay the market's history and do not depend
on the split. `--rho` instead measures the scores' Spearman rho against exact accuracy Shapley (the eval's
graded-quality case; its accuracy Shapley uses the whole split, as before).

Measured (2026-12-04, 3 of 10 riders, seeds 0 to 2; worst share ratio; the worst accuracy drop over these runs):
- `public`: direction 2.68, split 6.241 (4.629, 5.214, 6.241), stale 1.52, mix 0.946, step 0.453; drop 3.89;
- `hidden`: direction 3.02, split 1.996, stale 0.802, mix 0.567, step 0.35; drop 7.78 (direction, seed 1: a v from
  25 samples excludes and keeps back more honest updates); rho 0.898, 0.833, 0.952 (`--rho`);
- `hidden_perp`: direction 1.659, split 0.869, stale 1.476, mix 0.702, step 0.647; drop 7.78; rho 0.524, 0.571, 0.667;
- `house`: direction 8.649, split 8.241, stale 9.699, mix 9.066, step 9.765; drop 26.11, and honest trainers slashed:
  once the model has trained on the split, what the split still asks for is against most honest updates, which
  their trainers then keep back (27 to 47 of 70 honest trainer-rounds kept), so the few accepted decide everything.
- `mse` (with sign_flip, scaling, label_flip, ALIE and IPM too): most honest updates are against that v, so their
  trainers keep them back (19 to 63 of 70 honest trainer-rounds), the poisoners are accepted (label_flip costs up to
  75.56 points, IPM 47.78), riders take up to 21.8 honest shares, and rho is -0.738, -0.881, -0.5: a proven v needs
  the cross-entropy's gradient, softmax and all (the protocol, same attacks: worst drop 3.89, rho 0.97, 0.886, 0.929).
Hiding the batch alone pays the direction rider more: the gradient on the public batches is closer to the hidden
batch's than an honest non-IID update is. Projecting the public gradient off as well brings the split rider to 0.87
but no rider below 0.5, and the scores then stop ranking trainers by quality. None of the four is adopted.

Run: `.venv/bin/python scripts/hidden_split.py hidden --seeds 0,1,2 --counts 3`.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

import aggregator.eval.evaluate as evaluate
import aggregator.rules.round as round_rule
from aggregator.eval.evaluate import EvalConfig, free_rider_ratio, honest_harm, pick_attackers, simulate
from aggregator.rules.direction import quantize_direction
from aggregator.rules.novelty import novel_inner as protocol_novelty
from market.ml.attacks import History
from market.ml.tasks import unflatten_into
from market.ml.tasks.base import Split, Task
from market.ml.training import local_update, loss_gradient
from market.protocol.manifest import HyperParams, RuleConfig
from market.protocol.quant import QuantSpec

MODES = ("public", "hidden", "hidden_perp", "house", "mse")


def batches(val: Split, count: int, seed: int) -> list[Split]:
    """The validation split cut into `count` random batches of (nearly) equal size."""
    order = np.random.default_rng(seed).permutation(len(val))
    return [val.subset(part) for part in np.array_split(order, count)]


def union(parts: Sequence[Split]) -> Split:
    """One split of several."""
    return Split(torch.cat([p.x for p in parts]), torch.cat([p.y for p in parts]))


class HiddenSplit:
    """Patches the eval's simulation so that round r's v uses batch r + 1 and what a rider knows the batches before."""

    def __init__(self, mode: str, rounds: int, hp: HyperParams) -> None:
        self.mode, self.rounds, self.hp = mode, rounds, hp
        self.parts: list[Split] = []
        self.r = 0
        self.v_pub: torch.Tensor | None = None
        self.updates = evaluate.round_updates
        self.direction = evaluate.validation_direction

    def setup(self, task: Task, cfg: EvalConfig) -> None:
        """Cut the task's validation split for one simulation."""
        self.parts = batches(task.val, self.rounds + 1, cfg.seed)

    def public(self, r: int) -> Split:
        """What anyone has before round r commits: batch 0 and the batches of rounds 0 .. r-1."""
        return union(self.parts[: r + 1])

    def round_updates(self, task: Task, g: torch.Tensor, parts: list[Split], r: int, cfg: EvalConfig,
                      who: list[int] | None = None) -> list[torch.Tensor]:
        """`evaluate.round_updates`, remembering the round."""
        self.r = r
        return self.updates(task, g, parts, r, cfg, who)

    def validation_direction(self, build: Callable[[], nn.Module], g_prev: torch.Tensor, val: Split,
                             view: tuple[int, int], spec: QuantSpec) -> torch.Tensor:
        """The round's v: on the whole split (`public`) or on the round's hidden batch; also v_pub for the span."""
        if self.mode == "public":
            return self.direction(build, g_prev, val, view, spec)
        if self.mode == "mse":  # a loss whose gradient is two matrix products: a circuit computes it without exp
            return quantize_direction(-mse_gradient(build, g_prev, val)[view[0] : view[0] + view[1]], spec)
        if self.mode == "house":  # what the split still asks for once the model has trained on it
            return self.direction(build, g_prev + local_update(build, g_prev, val, self.hp, torch.device("cpu")), val,
                                  view, spec)
        offset, length = view
        self.v_pub = quantize_direction(-loss_gradient(build, g_prev, self.public(self.r))[offset : offset + length], spec)
        return self.direction(build, g_prev, self.parts[self.r + 1], view, spec)

    def published(self, g_prev: torch.Tensor, g: torch.Tensor, q: torch.Tensor, spec: QuantSpec, task: Task,
                  hp: HyperParams) -> History:
        """`evaluate.published`, the riders' direction and split update from the data public before the next round's
        commits (batch 0 and the batches of the rounds so far)."""
        base = protocol_published(g_prev, g, q, spec, task, hp)
        if self.mode in ("public", "house", "mse"):
            return base
        data = self.public(self.r + 1)
        return History(base.step, base.previous, base.norm, -loss_gradient(task.build_model, g, data).to(torch.float32),
                       local_update(task.build_model, g, data, hp, torch.device("cpu")))

    def novel_inner(self, a: Sequence[int], U: torch.Tensor, v: torch.Tensor, step: torch.Tensor) -> list[int]:
        """The protocol's novelty, or (`hidden_perp`) <u_i, v_perp> with v off span{s, v_pub} in float64."""
        if self.mode != "hidden_perp" or self.v_pub is None:
            return protocol_novelty(a, U, v, step)
        basis = [b.to(torch.float64) for b in (step, self.v_pub) if bool(b.any())]
        vv = v.to(torch.float64)
        B = torch.stack(basis, 1)
        perp = vv - (B @ torch.linalg.lstsq(B, vv[:, None]).solution)[:, 0]
        return [int(x) for x in torch.round(U.to(torch.float64) @ perp)]


protocol_published = evaluate.published


def mse_gradient(build: Callable[[], nn.Module], flat: torch.Tensor, data: Split) -> torch.Tensor:
    """Flat float64 gradient of half the mean squared distance between the logits and the one-hot labels: for a
    linear model, (Z - Y)^T [X, 1] / N, polynomial in the weights and the data."""
    model = unflatten_into(build(), flat.detach().cpu()).double()
    logits = model(data.x.double())
    target = torch.nn.functional.one_hot(data.y, logits.shape[1]).double()
    (0.5 * ((logits - target) ** 2).sum(1).mean()).backward()
    return torch.cat([p.grad.reshape(-1) for p in model.parameters() if p.grad is not None])


def graded_rho(seed: int, hs: HiddenSplit) -> float:
    """The eval's graded-quality Spearman rho at `seed` with this mode's v."""
    cfg = EvalConfig(seed=seed, workers=1)
    task = evaluate.digits_task("softmax")
    hs.setup(task, cfg)
    _, graded = evaluate.shapley_trainers(task, cfg)
    return round(float(evaluate.shapley_agreement(task, graded, cfg)["rho"]), 3)


def main() -> None:
    """Simulate each free rider per seed and count under the chosen mode; print one JSON line per run, then all."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=MODES)
    parser.add_argument("--attacks", default="free_rider_direction,free_rider_split,free_rider_stale,free_rider_mix,free_rider_step")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--counts", default="3")
    parser.add_argument("--rho", action="store_true")
    args = parser.parse_args()
    hs = HiddenSplit(args.mode, EvalConfig().rounds, EvalConfig().hp)
    evaluate.round_updates, evaluate.validation_direction, evaluate.published = (
        hs.round_updates, hs.validation_direction, hs.published)
    round_rule.novel_inner = hs.novel_inner
    if args.rho:
        print(json.dumps({"mode": args.mode, "rho_graded_quality": {s: graded_rho(s, hs) for s in map(int, args.seeds.split(","))}}))
        return
    results: dict[str, Any] = {}
    for seed in map(int, args.seeds.split(",")):
        cfg = EvalConfig(seed=seed, workers=1)
        task, parts = evaluate._setup(cfg)
        hs.setup(task, cfg)
        clean = simulate(task, parts, RuleConfig(), None, [], cfg).accuracy
        for attack in args.attacks.split(","):
            for count in map(int, args.counts.split(",")):
                t0 = time.perf_counter()
                log = simulate(task, parts, RuleConfig(), attack, pick_attackers(cfg.n_trainers, count, seed), cfg)
                key = f"{attack}@{count}/seed{seed}"
                results[key] = {"share_ratio": round(free_rider_ratio(log), 3), "accuracy": round(log.accuracy, 4),
                                "drop_points": round(100 * (clean - log.accuracy), 2), **honest_harm(log),
                                "seconds": round(time.perf_counter() - t0, 1)}
                print(json.dumps({"mode": args.mode, "run": key, **results[key]}), flush=True)
    worst: dict[str, float] = {}
    for key, row in results.items():
        name = key.split("@")[0]
        worst[name] = max(worst.get(name, 0.0), row["share_ratio"])
    print(json.dumps({"mode": args.mode, "worst_share_ratio": worst, "runs": results}))


if __name__ == "__main__":
    main()
