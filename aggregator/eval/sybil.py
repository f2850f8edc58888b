"""The v-sybil of issue 12: what a trainer earns when it knows the validation direction v in advance.

Each round the sybil (one of the trainers) takes a base update and adds `t * v / qmax` to its proof
view in the quantized domain (rounded half-even, each value clipped to +-qmax as a real quantizer
would; v's largest value is qmax, so t is the largest change of one value). It searches the largest
t that the round's rule, run by `aggregate_round` itself, still accepts: doubling from t = 1 to the
first rejection, then bisection, so the tilt found is accepted and one more is rejected. It tries
two bases: its own honest update, and the half-even rounded mean of the other trainers' updates
(the centre of the Krum cloud, where a tilt costs least distance: the sybil is granted knowledge
of it). Acceptance does not depend on the scores, so the searches serve any scoring: the round
counts the best share, under the scoring measured, over every accepted probe of both searches,
and that probe's outcome moves the global model, so later rounds follow the dynamics of that
scoring (each scoring plays its own rounds from the same seed and data). The protocol's scores
are what `aggregate_round` returns: §3 capped at the accepted median (aggregator/rules/clip.py).
Shares are PROTOCOL §7's: max(score, 0) over the accepted sum of max(score, 0), or 1/|A| when none
is positive.
`clip_study` sets the protocol's scores beside §3's uncapped scores (the rule before issue 12) and
other caps, with what each changes for honest trainers and for Spearman rho
(`fedmarket eval --clip-study`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from functools import partial
from typing import Any

import numpy as np
import torch

from aggregator.eval.evaluate import (
    EvalConfig,
    _setup,
    money_shares,
    pick_attackers,
    round_updates,
    shapley_agreement,
    shapley_trainers,
    submission_order,
)
from aggregator.rules.clip import clipped_shapley
from aggregator.rules.direction import split_direction, validation_direction
from aggregator.rules.novelty import float_step
from aggregator.rules.round import RoundOutcome, aggregate_round
from aggregator.rules.shapley import first_order_shapley
from market.ml.tasks import Task, flatten
from market.ml.tasks.base import Split
from market.protocol.manifest import RuleConfig
from market.protocol.quant import QuantSpec, quantize

#: Scores from the inner products a_i and the accepted flags, in place of the protocol's (another rule).
Scoring = Callable[[list[int], list[bool]], list[int]]

#: The protocol's scores, as `aggregate_round` returns them (§3 with every a_i capped at the accepted median).
PROTOCOL = "protocol_median_cap"
#: §3's first-order Shapley of the uncapped a's: the rule before issue 12, the baseline.
UNCAPPED = "uncapped_s3_pre_issue12"

#: What each label of `scorings` means, written into the study's JSON.
LABELS = {
    PROTOCOL: "the protocol's scores as aggregate_round returns them: §3 first-order Shapley of the a's capped "
              "at their accepted median (c_pct 100)",
    UNCAPPED: "baseline: §3 first-order Shapley of the uncapped a's, the rule before issue 12",
}


def cap_label(c_pct: int) -> str:
    """The label of the median cap at `c_pct` (a study candidate; the protocol's is `PROTOCOL`)."""
    return f"median_cap_{c_pct}pct"


def scorings(c_pcts: Sequence[int] = ()) -> dict[str, Scoring | None]:
    """The scorings compared, by label: the protocol's (None: the round's own scores), the uncapped
    baseline, then the median cap at each of `c_pcts`."""
    caps: dict[str, Scoring | None] = {cap_label(c): partial(clipped_shapley, c_pct=c) for c in c_pcts}
    return {PROTOCOL: None, UNCAPPED: first_order_shapley, **caps}


def tilted(base: torch.Tensor, v: torch.Tensor, view: tuple[int, int], t: int, spec: QuantSpec) -> torch.Tensor:
    """`base` (a full quantized update) plus `round_half_even(t * v / qmax)` over the view, clipped to +-qmax."""
    offset, length = view
    step = torch.round(v.to(torch.float64) * (t / spec.qmax)).to(torch.int64)
    out = base.clone()
    out[offset : offset + length] = (out[offset : offset + length] + step).clamp(-spec.qmax, spec.qmax)
    return out


def max_tilt(spec: QuantSpec) -> int:
    """A tilt beyond which nothing changes: every value where v != 0 is then at +-qmax."""
    return 2 * spec.qmax * spec.qmax


@dataclass(frozen=True)
class Probe:
    """One tilt tried from one base: the round's outcome with the sybil (slot `sybil`) submitting it."""

    base: str
    t: int
    sybil: int
    outcome: RoundOutcome

    @property
    def accepted(self) -> bool:
        """Whether the round's rule accepted the sybil's update."""
        return self.outcome.accepted[self.sybil]

    def share(self, score: Scoring | None = None) -> Fraction:
        """The sybil's §7 share under the protocol's scores (None) or under `score`."""
        out = self.outcome
        scores = out.scores if score is None else score(out.inner, out.accepted)
        return money_shares(scores, out.accepted)[self.sybil]


@dataclass(frozen=True)
class TiltSearch:
    """The search from one base, its probes in order (the first untilted): `boundary` is accepted and
    `boundary + 1` rejected (None: the base itself is rejected; `max_tilt` when nothing is)."""

    base: str
    boundary: int | None
    probes: tuple[Probe, ...]

    def best(self, score: Scoring | None = None) -> Probe | None:
        """The accepted probe with the largest share under `score` (ties: the larger tilt); None if none is."""
        found = [p for p in self.probes if p.accepted]
        return max(found, key=lambda p: (p.share(score), p.t)) if found else None


@dataclass(frozen=True)
class SybilRound:
    """One round as the aggregator runs it, the sybil's slot `sybil` to be replaced.

    `Q` holds every trainer's honest full quantized update (the sybil's own at `sybil`); `step` is the
    previous step over the proof view that the scores discount (aggregator/rules/novelty.py; None: none).
    """

    Q: torch.Tensor
    sybil: int
    v: torch.Tensor
    g: torch.Tensor
    spec: QuantSpec
    view: tuple[int, int]
    seq: Sequence[int]
    rule: RuleConfig = field(default_factory=RuleConfig)
    step: torch.Tensor | None = None
    split: torch.Tensor | None = None

    def probe(self, name: str, base: torch.Tensor, t: int) -> Probe:
        """Run the round with the sybil submitting `base` tilted by t."""
        Q = self.Q.clone()
        Q[self.sybil] = tilted(base, self.v, self.view, t, self.spec)
        offset, length = self.view
        out = aggregate_round(Q[:, offset : offset + length], Q, self.v, self.g, self.spec, self.rule, self.seq, step=self.step,
                              split=self.split)
        return Probe(name, t, self.sybil, out)

    def bases(self) -> dict[str, torch.Tensor]:
        """The sybil's own honest update first, then the half-even rounded mean of the others'."""
        others = torch.cat([self.Q[: self.sybil], self.Q[self.sybil + 1 :]])
        return {"own": self.Q[self.sybil], "mean": torch.round(others.to(torch.float64).mean(dim=0)).to(torch.int64)}

    def search(self, name: str, base: torch.Tensor) -> TiltSearch:
        """Largest accepted tilt from `base`: doubling from 1 to the first rejection, then bisection."""
        probes = [self.probe(name, base, 0)]
        if not probes[0].accepted:
            return TiltSearch(name, None, tuple(probes))
        lo, hi, top = 0, None, max_tilt(self.spec)
        while hi is None and lo < top:
            t = min(2 * lo if lo else 1, top)
            probes.append(self.probe(name, base, t))
            lo, hi = (t, None) if probes[-1].accepted else (lo, t)
        while hi is not None and hi - lo > 1:
            mid = (lo + hi) // 2
            probes.append(self.probe(name, base, mid))
            lo, hi = (mid, hi) if probes[-1].accepted else (lo, mid)
        return TiltSearch(name, lo, tuple(probes))

    def attack(self) -> list[TiltSearch]:
        """Every base's search, the own update's first (its first probe is the honest submission)."""
        return [self.search(name, base) for name, base in self.bases().items()]


def best_probe(searches: Sequence[TiltSearch], score: Scoring | None = None) -> Probe:
    """The accepted probe with the largest share under `score` over every search (the first search
    wins ties); the own update untilted when no probe is accepted."""
    found = [p for p in (s.best(score) for s in searches) if p is not None]
    return max(found, key=lambda p: p.share(score)) if found else searches[0].probes[0]


def sybil_v(task: Task, parts: list[Split], cfg: EvalConfig, score: Scoring | None = None) -> dict[str, Any]:
    """`cfg.sybil_rounds` rounds of the default rule with the sybil (trainer `pick_attackers(n, 1)`)
    tilting each round, paid by `score` (None: the protocol's scores), its best probe moving the model:
    its mean and per-round shares, and what its honest update alone would have earned in the same rounds."""
    build, view = task.build_model, task.view()
    n = len(parts)
    sybil = pick_attackers(n, 1, cfg.seed)[0]
    g = g_prev = flatten(task.model(cfg.seed))
    rounds = []
    for r in range(cfg.sybil_rounds):
        Q = torch.stack([quantize(u, cfg.spec) for u in round_updates(task, g, parts, r, cfg)])
        v = validation_direction(build, g, task.val, view, cfg.spec)
        seq = submission_order(n, None, [], cfg.seed * 104_729 + r)
        step = float_step(g, g_prev, view, cfg.spec)
        h = split_direction(build, g, task.val, view, cfg.spec, cfg.hp)
        searches = SybilRound(Q, sybil, v, g, cfg.spec, view, seq, step=step, split=h).attack()
        best = best_probe(searches, score)
        accepted_a = sorted(a for a, ok in zip(best.outcome.inner, best.outcome.accepted) if ok)
        rounds.append({
            "share": float(best.share(score)), "base": best.base, "tilt": best.t,
            "boundary": {s.base: s.boundary for s in searches}, "probes": sum(len(s.probes) for s in searches),
            "accepted": sum(best.outcome.accepted), "a_sybil": best.outcome.inner[sybil],
            "a_median_accepted": accepted_a[len(accepted_a) // 2], "honest_share": float(searches[0].probes[0].share(score)),
        })
        g_prev, g = g, best.outcome.new_global
    return {
        "share": float(np.mean([x["share"] for x in rounds])),
        "fair_share": 1 / n,
        "honest_share": float(np.mean([x["honest_share"] for x in rounds])),
        "sybil": sybil,
        "shares_per_round": [x["share"] for x in rounds],
        "rounds": rounds,
    }


def sybil_v_figures(task: Task, parts: list[Split], cfg: EvalConfig) -> dict[str, Any]:
    """The eval's figures, same seed and data, each rule playing its own rounds: `sybil_v_share` under the
    protocol's scores, `sybil_v_share_uncapped` under §3's uncapped scores (the baseline), `sybil_v_fair_share`."""
    out = {label: sybil_v(task, parts, cfg, score) for label, score in scorings().items()}
    return {
        "sybil_v_share": out[PROTOCOL]["share"], "sybil_v_share_uncapped": out[UNCAPPED]["share"],
        "sybil_v_fair_share": out[PROTOCOL]["fair_share"],
        "sybil_v_shares_per_round": {label: x["shares_per_round"] for label, x in out.items()},
        "sybil_v": out,
    }


def honest_share_change(task: Task, parts: list[Split], cfg: EvalConfig, chosen: Mapping[str, Scoring | None]) -> dict[str, Any]:
    """Without a sybil (every trainer honest, the default rule, `cfg.sybil_rounds` rounds), how each
    scoring of `chosen` moves every trainer's §7 share from the uncapped baseline's: largest and mean
    |change| per trainer and round, and a round's largest share before and after (mean over rounds)."""
    build, view = task.build_model, task.view()
    n = len(parts)
    g = g_prev = flatten(task.model(cfg.seed))
    deltas: dict[str, list[float]] = {label: [] for label in chosen}
    top_after: dict[str, list[float]] = {label: [] for label in chosen}
    top_before = []
    for r in range(cfg.sybil_rounds):
        Q = torch.stack([quantize(u, cfg.spec) for u in round_updates(task, g, parts, r, cfg)])
        v = validation_direction(build, g, task.val, view, cfg.spec)
        seq = submission_order(n, None, [], cfg.seed * 104_729 + r)
        step = float_step(g, g_prev, view, cfg.spec)
        h = split_direction(build, g, task.val, view, cfg.spec, cfg.hp)
        out = aggregate_round(Q[:, view[0] : view[0] + view[1]], Q, v, g, cfg.spec, RuleConfig(), seq, step=step, split=h)
        before = money_shares(first_order_shapley(out.inner, out.accepted), out.accepted)
        top_before.append(float(max(before)))
        for label, score in chosen.items():
            after = money_shares(out.scores if score is None else score(out.inner, out.accepted), out.accepted)
            deltas[label] += [float(y - x) for x, y in zip(before, after)]
            top_after[label].append(float(max(after)))
        g_prev, g = g, out.new_global
    return {
        label: {
            "max_abs": max(abs(d) for d in deltas[label]), "mean_abs": float(np.mean(np.abs(deltas[label]))),
            "top_share_uncapped": float(np.mean(top_before)), "top_share": float(np.mean(top_after[label])),
        }
        for label in chosen
    }


def clip_study(cfg: EvalConfig, c_pcts: Sequence[int] = (125,)) -> dict[str, Any]:
    """For one seed (`cfg.seed`), per scoring of `scorings(c_pcts)`: the sybil's share, Spearman rho,
    and, but for the baseline, what it changes for honest trainers."""
    torch.set_num_threads(1)
    task, parts = _setup(cfg)
    plain, graded = shapley_trainers(task, cfg)
    chosen = scorings(c_pcts)
    attacked = {label: sybil_v(task, parts, cfg, score) for label, score in chosen.items()}
    changed = honest_share_change(task, parts, cfg, {k: s for k, s in chosen.items() if k != UNCAPPED})
    return {
        label: {
            "sybil_v_share": attacked[label]["share"],
            "sybil_v_shares_per_round": attacked[label]["shares_per_round"],
            "sybil_honest_share": attacked[label]["honest_share"],
            "spearman_rho": shapley_agreement(task, graded, cfg, score)["rho"],
            "spearman_rho_plain_noniid": shapley_agreement(task, plain, cfg, score)["rho"],
            **({"honest_share_change_vs_uncapped": changed[label]} if label in changed else {}),
        }
        for label, score in chosen.items()
    }


def clip_study_seeds(seeds: Sequence[int], cfg: EvalConfig = EvalConfig(), c_pcts: Sequence[int] = (125,)) -> dict[str, Any]:
    """`clip_study` per seed, and per scoring the worst over the seeds (largest shares, lowest rho)."""
    per_seed = {s: clip_study(replace(cfg, seed=s), c_pcts) for s in seeds}
    worst = {
        name: {
            "sybil_v_share": max(r[name]["sybil_v_share"] for r in per_seed.values()),
            "sybil_v_share_worst_round": max(max(r[name]["sybil_v_shares_per_round"]) for r in per_seed.values()),
            "spearman_rho": min(r[name]["spearman_rho"] for r in per_seed.values()),
            "spearman_rho_plain_noniid": min(r[name]["spearman_rho_plain_noniid"] for r in per_seed.values()),
        }
        for name in per_seed[seeds[0]]
    }
    labels = LABELS | {cap_label(c): f"candidate: the median cap at c_pct {c} (not the protocol)" for c in c_pcts}
    return {"labels": labels, "worst": worst, "per_seed": {str(s): r for s, r in per_seed.items()}, "seeds": list(seeds)}
