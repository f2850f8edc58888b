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
- `sparsemax`, `hinge`: as `mse`, with the sparsemax loss of the logits divided by `--temperature` T (dZ =
  sparsemax(Z / T) - Y: one comparison per class and a sum, no exponential) or Weston and Watkins' multi-class hinge
  (margin T); the riders send this loss's direction;
- `sealed`: the protocol's v (cross-entropy, whole split), from a split that nobody but the owner and the proof sees,
  and v itself never revealed (the statement change of README Limits, with v proven): no rider has the split, and
  honest trainers cannot keep back an update against v, so it is submitted and excluded (flag 3, unpaid, no stake
  moved). `free_rider_direction` sends the best guess the public record allows: the least-norm fit of the previous
  round's v to its revealed updates and their inner products with it (which the proven scores give away, an upper
  bound on the leak);
- `sealed_v`: `sealed`, but each round's v revealed once the round is over; `free_rider_direction` sends the
  previous round's v.
`--sealed-loss sparsemax` (with `--temperature`) puts the sparsemax loss behind the sealed modes' v, the one
`zk/vgradcost.py` proves. `--gate` adds `scripts/free_rider_span.py`'s `gate` to any mode: a positive novelty is
capped by the update's inner product with v off the span of the previous step, the previous round's proof views and
its v.
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
- `sparsemax`, T = 1: rho 0.881, 0.643, 0.333, label_flip costs up to 6.11 points, ALIE 7.32 honest shares;
  T = 2: rho 0.881, 0.786, 0.429; T = 4: rho 0.952, 0.939, 0.97 (the cross-entropy's: 0.97, 0.886, 0.929), the poisoners paid
  nothing (sign_flip, scaling, label_flip, IPM 0.0; ALIE 5.295, the cross-entropy's 4.791 in the same runs), worst
  drop 1.94 over them (1.11), riders direction 2.598 (2.68), split 7.919 (6.241), stale 1.303 (1.52), worst drop
  4.44 (direction; 3.89); T = 8: rho 0.952, 0.958, 0.976, the poisoners paid nothing (ALIE 3.771), riders direction 2.527, split 4.055,
  stale 1.132, worst drop 5.0 (direction; 3.61 with the attackers merely absent: this mode's clean run on that seed
  is the better one); T = 16: rho 0.97, 0.857, 0.929;
- `hinge`, T = 1: rho 0.881, 0.619, 0.452, label_flip up to 6.39 points, ALIE 5.415.
- `sealed` (free riders of the history, ALIE, IPM, label_flip): worst share ratio mix 1.379, direction 1.185 (the
  fitted guess), stale 1.074, peer 0.59, step 0.463; the poisoners as in `public` (ALIE 4.791, IPM and label_flip
  0.0, worst drop 1.11; the riders' worst drop 3.06, stale and direction on seed 0); 13 to 36 honest trainer-rounds
  excluded, none slashed; rho 0.97, 0.886, 0.929 (the same v as `public`);
- `sealed_v`: the previous round's v sent as the direction: 0.864, 0.518, 1.135.
- `sealed --gate` (the same attacks): worst share ratio step 0.808 (seed 2; the gate alone, public split, has the same
  0.808 there), mix 0.529, peer 0.449, stale 0.209, direction 0.08; ALIE 3.403, IPM and label_flip 0.0; the same
  accuracy as `sealed` (the gate moves pay, not the model); rho 0.952, 0.857, 0.976.
- `sealed --gate --sealed-loss sparsemax` (the same attacks, sign_flip and scaling too): T = 4: worst mix 0.814,
  peer 0.75, step 0.47; rho 0.976, 0.667, 1.0; one honest trainer slashed (seed 0, the direction riders' run, round 7:
  its update at 2,589 against a median norm near 9,400, under the floor; nobody can keep back an update when v is
  sealed, and in the public runs that trainer's low update was against v and kept); worst drop 6.39 (stale).
  T = 8: worst mix 0.934, step 0.804, peer 0.799, direction 0.261; none slashed; the poisoners paid nothing (ALIE
  3.062); rho 0.952, 0.881, 1.0; worst drop 3.61 (the attackers merely absent). `sealed --sealed-loss sparsemax`
  at T = 4 without the gate: rho 0.97, 0.857, 0.929.
Hiding the batch alone pays the direction rider more: the gradient on the public batches is closer to the hidden
batch's than an honest non-IID update is. Projecting the public gradient off as well brings the split rider to 0.87
but no rider below 0.5, and the scores then stop ranking trainers by quality. None of the first four is adopted.
The last three say what the statement change of README Limits (v proven from a committed split that is never
published) would buy: the split and direction riders (6.241 and 2.68) give way to the riders of the history, whose
worst is 1.379 with v sealed, so `free_rider_share_ratio` would fall from 6.24 to about 1.4, still above the 0.5
target, and to 0.81 with the gate as well (0.53 but for the resent step on seed 2). The proof need not carry an
exponential: the sparsemax loss at T = 4 or 8 ranks trainers at least as well as the cross-entropy (worst rho 0.939
and 0.952, against 0.886) and stops the same poisoners.

Run: `.venv/bin/python scripts/hidden_split.py hidden --seeds 0,1,2 --counts 3`; `sparsemax --temperature 4`
(`--attacks sign_flip,scaling,label_flip,alie,ipm,free_rider_direction,free_rider_split,free_rider_stale`, and `--rho`);
`sealed --attacks free_rider_direction,free_rider_stale,free_rider_mix,free_rider_step,free_rider_peer,alie,ipm,label_flip`
(and `--gate`, and `--rho`).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
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

MODES = ("public", "hidden", "hidden_perp", "house", "mse", "sparsemax", "hinge", "sealed", "sealed_v")
#: Losses whose gradient a circuit computes without an exponential: comparisons and matrix products only.
SURROGATES = ("mse", "sparsemax", "hinge")
#: The logits' divisor for the `sparsemax` and `hinge` losses (`--temperature`; 1 for `mse`).
TEMPERATURE = [1.0]


def batches(val: Split, count: int, seed: int) -> list[Split]:
    """The validation split cut into `count` random batches of (nearly) equal size."""
    order = np.random.default_rng(seed).permutation(len(val))
    return [val.subset(part) for part in np.array_split(order, count)]


def union(parts: Sequence[Split]) -> Split:
    """One split of several."""
    return Split(torch.cat([p.x for p in parts]), torch.cat([p.y for p in parts]))


class HiddenSplit:
    """Patches the eval's simulation so that round r's v uses batch r + 1 and what a rider knows the batches before."""

    def __init__(self, mode: str, rounds: int, hp: HyperParams, loss: str = "ce") -> None:
        self.mode, self.rounds, self.hp, self.loss = mode, rounds, hp, loss
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
        if self.mode in SURROGATES:  # a loss whose gradient a circuit computes without exp
            return quantize_direction(-surrogate_gradient(self.mode, build, g_prev, val)[view[0] : view[0] + view[1]],
                                      spec)
        if self.mode.startswith("sealed"):  # the protocol's v (or --sealed-loss's), from a split only the proof sees
            self.v_pub = quantize_direction(-self.sealed_gradient(build, g_prev, val)[view[0] : view[0] + view[1]], spec)
            return self.v_pub
        if self.mode == "house":  # what the split still asks for once the model has trained on it
            return self.direction(build, g_prev + local_update(build, g_prev, val, self.hp, torch.device("cpu")), val,
                                  view, spec)
        offset, length = view
        self.v_pub = quantize_direction(-loss_gradient(build, g_prev, self.public(self.r))[offset : offset + length], spec)
        return self.direction(build, g_prev, self.parts[self.r + 1], view, spec)

    def sealed_gradient(self, build: Callable[[], nn.Module], flat: torch.Tensor, val: Split) -> torch.Tensor:
        """The sealed modes' loss gradient: the cross-entropy's, or (`--sealed-loss sparsemax`) the sparsemax loss's
        at `--temperature`, the one a circuit would prove (zk/vgradcost.py)."""
        return loss_gradient(build, flat, val) if self.loss == "ce" else surrogate_gradient(self.loss, build, flat, val)

    def published(self, g_prev: torch.Tensor, g: torch.Tensor, q: torch.Tensor, spec: QuantSpec, task: Task,
                  hp: HyperParams) -> History:
        """`evaluate.published`, the riders' direction and split update from the data public before the next round's
        commits (batch 0 and the batches of the rounds so far)."""
        base = protocol_published(g_prev, g, q, spec, task, hp)
        if self.mode in ("public", "house", "mse"):
            return base
        if self.mode in SURROGATES:  # the riders see the split, and send this mode's direction
            return replace(base, direction=-surrogate_gradient(self.mode, task.build_model, g, task.val).to(torch.float32))
        if self.mode == "sealed_v":  # v is revealed once its round is over; the split never is
            return replace(base, direction=-self.sealed_gradient(task.build_model, g_prev, task.val).to(torch.float32),
                           split_update=None)
        if self.mode == "sealed":  # neither is ever revealed: the rider fits v to the round's updates and scores
            return replace(base, direction=inferred_direction(q, self.v_pub, spec), split_update=None)
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


def inferred_direction(q: torch.Tensor, v: torch.Tensor | None, spec: QuantSpec) -> torch.Tensor:
    """What a round's public record tells of a sealed `v`: the least-norm `w` in the span of the revealed updates `q`
    with `<w, q_j> = <v, q_j>` for each, as the proven scores give those inner products away (an upper bound:
    the median cap and the novelty blur them). Flat float32, at the updates' scale."""
    if v is None:
        raise ValueError("no v yet: the round's direction is computed before its record")
    Q = q.to(torch.float64)[:, : v.numel()]
    a = Q @ v.to(torch.float64)
    w = Q.T @ torch.linalg.lstsq(Q @ Q.T, a[:, None]).solution[:, 0]
    return (w / float(2**spec.scale_log2)).to(torch.float32)


def sparsemax(z: torch.Tensor) -> torch.Tensor:
    """Row-wise Euclidean projection of `z` onto the simplex (Martins and Astudillo 2016): `max(z - tau, 0)`, with
    tau from the sorted row. A circuit checks it with one comparison per class and a sum, no exponential."""
    srt = torch.sort(z, dim=1, descending=True).values
    k = torch.arange(1, z.shape[1] + 1, dtype=z.dtype)
    cum = srt.cumsum(1)
    support = (1 + k * srt > cum).sum(1, keepdim=True)
    tau = (cum.gather(1, support - 1) - 1) / support.to(z.dtype)
    return (z - tau).clamp(min=0)


def surrogate_gradient(loss: str, build: Callable[[], nn.Module], flat: torch.Tensor, data: Split) -> torch.Tensor:
    """Flat float64 gradient of a mean multi-class loss whose gradient in the logits Z needs no exponential, so that
    for a linear model the whole gradient is `dZ^T [X, 1] / N`:
    `mse` half the squared distance between the logits and the one-hot labels (dZ = Z - Y), `sparsemax` the sparsemax
    loss (dZ = sparsemax(Z) - Y), `hinge` Weston and Watkins' (dZ_j = [1 + Z_j - Z_y > 0] for j != y, minus their
    count at y)."""
    model = unflatten_into(build(), flat.detach().cpu()).double()
    logits = model(data.x.double())
    target = torch.nn.functional.one_hot(data.y, logits.shape[1]).double()
    z = logits.detach() / TEMPERATURE[0]
    if loss == "mse":
        dz = z - target
    elif loss == "sparsemax":
        dz = sparsemax(z) - target
    elif loss == "hinge":
        viol = ((1 + z - (z * target).sum(1, keepdim=True)) > 0).double() * (1 - target)
        dz = viol - target * viol.sum(1, keepdim=True)
    else:
        raise ValueError(f"unknown loss {loss!r}; known: {SURROGATES}")
    ((dz * logits).sum(1).mean()).backward()
    return torch.cat([p.grad.reshape(-1) for p in model.parameters() if p.grad is not None])


def graded_rho(seed: int, hs: HiddenSplit) -> float:
    """The eval's graded-quality Spearman rho at `seed` with this mode's v."""
    cfg = EvalConfig(seed=seed, workers=1, decline_against=not hs.mode.startswith("sealed"))
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
    parser.add_argument("--temperature", type=float, default=1.0, help="sparsemax and hinge: the logits' divisor")
    parser.add_argument("--gate", action="store_true", help="also cap a positive novelty by the update's inner "
                        "product with v off the previous round's span (scripts/free_rider_span.py's `gate`)")
    parser.add_argument("--sealed-loss", choices=("ce", "sparsemax"), default="ce",
                        help="sealed modes: the loss behind v (sparsemax at --temperature: the one zk/vgradcost.py proves)")
    args = parser.parse_args()
    TEMPERATURE[0] = args.temperature
    hs = HiddenSplit(args.mode, EvalConfig().rounds, EvalConfig().hp, args.sealed_loss)
    evaluate.round_updates, evaluate.validation_direction, evaluate.published = (
        hs.round_updates, hs.validation_direction, hs.published)
    round_rule.novel_inner = hs.novel_inner
    if args.gate:
        from free_rider_span import SpanScore  # scripts/ is on the path when this script runs

        span = SpanScore("gate")  # wraps the round_updates just patched
        evaluate.aggregate_round, evaluate.round_updates = span.aggregate_round, span.round_updates
        round_rule.novel_inner, round_rule.contribution_scores = span.novel_inner, span.contribution_scores
    if args.rho:
        print(json.dumps({"mode": args.mode, "rho_graded_quality": {s: graded_rho(s, hs) for s in map(int, args.seeds.split(","))}}))
        return
    results: dict[str, Any] = {}
    for seed in map(int, args.seeds.split(",")):
        cfg = EvalConfig(seed=seed, workers=1, decline_against=not args.mode.startswith("sealed"))  # sealed: nobody checks v first
        task, parts = evaluate._setup(cfg)
        hs.setup(task, cfg)
        clean = simulate(task, parts, RuleConfig(), None, [], cfg).accuracy
        for attack in args.attacks.split(","):
            if args.mode.startswith("sealed") and attack == "free_rider_split":
                continue  # no rider has the split
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
