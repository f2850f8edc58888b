"""End-to-end evaluation on digits: accuracy under attack, detection, pay, proven-vs-accuracy Shapley; own data.

`run(out_dir)` simulates `n_trainers` non-IID trainers (Dirichlet alpha) for `rounds` rounds with
the exact PROTOCOL §3 pipeline (quantize, validation direction, outlier rule, first-order
Shapley of the median-capped novel a's, average), for every attack with 0, 2 and 3 attackers and
every rule, and writes `eval.json` and PNG plots into `out_dir`. As the contract does, a trainer
flagged 1 (slashed) is ejected and submits no more; one flagged 3 (excluded) stays. Free riders
that replay the market's history (market/ml/attacks.py) are absent in round 1.

Definitions. Accuracy drops are in points of test accuracy against the same rule's clean run
(all trainers honest) and against its honest-only run (the attackers absent: the data they
withhold is lost whatever the rule). Detection counts flags (1 or 3) per present trainer and round:
`detection_*` over every attack (free riders included: the §3 screens catch copies, which are
submitted after their victims, and zero updates) plus the clean run, `detection_*_poisoning`
without the free riders; `free_rider_reward_share` is what free riders still earn. Pay is the
contract's split of each round (PROTOCOL §7, `round_weights`): max(score, 0) over the accepted, equal over
the accepted when no score is positive, equal over the accepted and the excluded when there are excluded slots and
at most max(1, N // 4) of their N are accepted. `honest_slashed_total`
counts honest trainers slashed in every run of the default rule and in the own-data run, `honest_excluded_rounds_total`
honest trainer-rounds excluded, `honest_kept_rounds_total` those whose trainer kept its update against v (the default
node's `decline_against`: unpaid like an exclusion, but not flagged, so not in `detection_precision`);
`free_rider_share_ratio` is, over the free-rider attacks and
counts, the best-paid free rider's mean share in rounds 2 on over the honest trainers' mean share
in the same rounds. `own_data_accuracy_ratio` comes from a project on a CSV written at eval time
(scikit-learn's breast cancer data, `own_data_run`): its federated test accuracy over a centralised
model's on the union of the trainers' data, same model and epochs. `per_attack` gives, at the
largest attacker count, each attack's drop, honest trainers slashed, excluded and kept, and the
attackers' share of the budget. `run_seeds`
repeats everything per seed and reports the worst seed. `spearman_rho` compares, for 8 trainers, the sum over
rounds of each round's proven scores (divided by the round's largest |score|) with the sum of
exact accuracy-based Shapley values (validation accuracy of g + mean of the coalition's updates),
when trainers differ in quality (label noise i/8 for trainer i, on top of Dirichlet non-IID);
`spearman_rho_plain_noniid` is the same with equal-quality trainers, where accuracy Shapley
differences are a few validation samples and mostly noise. `sybil_v_share` is the mean over
`sybil_rounds` rounds of the budget share of one of the `n_trainers` who knows v in advance and
tilts its update towards v as far as the default rule still accepts, paid by the protocol's scores
(capped at the accepted median); `sybil_v_share_uncapped` is the same rounds paid by §3's uncapped
scores, the rule before issue 12 (aggregator/eval/sybil.py); `sybil_v_fair_share` is 1 / n_trainers.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import spearmanr

from aggregator.eval.reports import coalition_accuracy, exact_shapley
from aggregator.rules.direction import split_direction, validation_direction
from aggregator.rules.novelty import float_step
from aggregator.rules.replay import LOOKBACK, find_replays
from aggregator.rules.round import aggregate_round
from aggregator.rules.shapley import inner_products
from market.ml.attacks import ATTACKS, History, craft, get_attack
from market.ml.tasks import Task, digits_task, dirichlet_partition, flatten, task_from_files
from market.ml.tasks.base import Split
from market.ml.training import evaluate, local_update, loss_gradient
from market.protocol.manifest import HyperParams, RuleConfig, RuleName
from market.protocol.money import round_weights, weight_shares
from market.protocol.quant import QuantSpec, dequantize, fit_scale_log2, quantize

FREE_RIDERS = tuple(name for name, attack in ATTACKS.items() if attack.free_rider)


def rule_label(config: RuleConfig) -> str:
    """A run's rule label: the manifest's rule name, then the parameters that differ from its
    defaults (`multi_krum(tau_pct=0)`)."""
    default = RuleConfig(rule=config.rule)
    changed = [f"{f.name}={getattr(config, f.name)}" for f in fields(config) if getattr(config, f.name) != getattr(default, f.name)]
    return f"{config.rule}({', '.join(changed)})" if changed else str(config.rule)


#: The default rule's label: the manifest's default rule (Multi-Krum with its tolerance and screens).
DEFAULT_RULE = rule_label(RuleConfig())


def default_rules() -> dict[str, RuleConfig]:
    """The rules compared, by label; the first is the default. `none` is FedAvg."""
    configs = (RuleConfig(), RuleConfig(tau_pct=0), RuleConfig(rule=RuleName.FLTRUST), RuleConfig(rule=RuleName.NONE))
    return {rule_label(c): c for c in configs}


@dataclass(frozen=True)
class EvalConfig:
    """What is simulated."""

    n_trainers: int = 10
    alpha: float = 0.5
    rounds: int = 10
    counts: tuple[int, ...] = (2, 3)
    attacks: tuple[str, ...] = tuple(ATTACKS)
    hp: HyperParams = field(default_factory=HyperParams)
    spec: QuantSpec = field(default_factory=QuantSpec)
    seed: int = 0
    shapley_n: int = 8
    workers: int = 2
    rules: dict[str, RuleConfig] = field(default_factory=default_rules)
    sybil_rounds: int = 5
    #: Honest trainers keep an update against v, as the default TrainerNode does (scripts/decline_against.py).
    decline_against: bool = True


def money_shares(scores: Sequence[int], accepted: Sequence[bool]) -> list[Fraction]:
    """PROTOCOL §7's split of a round with no excluded slot, exactly: accepted i gets max(score, 0) / P,
    P the accepted sum of max(score, 0), or 1/|A| when P = 0; a rejected slot gets 0."""
    return weight_shares(round_weights([0 if ok else 1 for ok in accepted], scores))


@dataclass(frozen=True)
class RunLog:
    """One simulation: final test accuracy, per-round accuracy, and per round the trainers present
    (indices, increasing; an ejected trainer, a free rider skipping round 1 or an honest trainer keeping its
    update against v is absent), their PROTOCOL §5 flags (0 accepted, 1 slashed, 3 excluded) and their scores, in
    that order; `n_trainers` joined. `replayed` holds, per round, the trainers whose update was taken out as a replay
    (PROTOCOL §3): absent from the round, as the contract counts them, but they did submit."""

    accuracy: float
    curve: list[float]
    present: list[list[int]]
    flags: list[list[int]]
    scores: list[list[int]]
    attackers: list[int]
    n_trainers: int = 0
    replayed: list[list[int]] = field(default_factory=list)

    def shares(self) -> list[dict[int, float]]:
        """Per round, each present trainer's share of the budget as the contract credits it (`round_weights`)."""
        return [
            {i: float(x) for i, x in zip(who, weight_shares(round_weights(flags, scores)))}
            for who, flags, scores in zip(self.present, self.flags, self.scores)
        ]

    def flagged(self, flag: int, honest: bool = True) -> list[tuple[int, int]]:
        """(round, trainer) of every flag `flag` given to an honest trainer (or to an attacker)."""
        return [
            (r, i) for r, (who, flags) in enumerate(zip(self.present, self.flags)) for i, f in zip(who, flags)
            if f == flag and (i not in self.attackers) == honest
        ]

    def kept(self) -> list[tuple[int, int]]:
        """(round, trainer) of every honest trainer neither present nor ejected: it kept its update against v
        (`EvalConfig.decline_against`), unpaid like an excluded one but unflagged."""
        ejected: set[int] = set()
        out: list[tuple[int, int]] = []
        for r, (who, flags) in enumerate(zip(self.present, self.flags)):
            gone = ejected | set(self.attackers) | set(self.replayed[r] if r < len(self.replayed) else ())
            out += [(r, i) for i in range(self.n_trainers) if i not in who and i not in gone]
            ejected |= {i for i, f in zip(who, flags) if f == 1}
        return out

    def taken_out(self, honest: bool = True) -> list[tuple[int, int]]:
        """(round, trainer) of every honest trainer's (or attacker's) update taken out as a replay."""
        return [(r, i) for r, who in enumerate(self.replayed) for i in who if (i not in self.attackers) == honest]


def round_updates(
    task: Task, g: torch.Tensor, parts: list[Split], r: int, cfg: EvalConfig, who: list[int] | None = None
) -> list[torch.Tensor]:
    """The honest local updates in round r of the trainers `who` (default: all; seeded by trainer and round)."""
    return [
        local_update(task.build_model, g, parts[i], replace(cfg.hp, seed=cfg.seed * 100_003 + r * 1_009 + i), torch.device("cpu"))
        for i in (range(len(parts)) if who is None else who)
    ]


def submission_order(n: int, attack: str | None, attackers: list[int], seed: int) -> list[int]:
    """Each trainer's submission rank in a round: random, except that copiers come after everyone
    else (a copier needs its victim's update before it can submit) and attackers that commit first
    (`Attack.first`: they need nothing from the round) before everyone else."""
    perm = np.random.default_rng(seed).permutation(n).tolist()
    if attack is not None and get_attack(attack).copies:
        perm = [i for i in perm if i not in attackers] + [i for i in perm if i in attackers]
    if attack is not None and get_attack(attack).first:
        perm = [i for i in perm if i in attackers] + [i for i in perm if i not in attackers]
    seq = [0] * n
    for rank, i in enumerate(perm):
        seq[i] = rank
    return seq


def published(
    g_prev: torch.Tensor, g: torch.Tensor, q: torch.Tensor, spec: QuantSpec, task: Task, hp: HyperParams
) -> History:
    """What a round leaves the market: the global step g - g_prev, the submitted updates (dequantized),
    the median of their norms, and what the published split gives at g (§4): minus the validation-loss gradient,
    and the project's local training on the split."""
    previous = tuple(dequantize(row, spec) for row in q)
    direction = -loss_gradient(task.build_model, g, task.val).to(torch.float32)
    split_update = local_update(task.build_model, g, task.val, hp, torch.device("cpu"))
    return History(g - g_prev, previous, float(np.median([float(u.norm()) for u in previous])), direction, split_update)


def simulate(
    task: Task, parts: list[Split], rule: RuleConfig, attack: str | None, attackers: list[int], cfg: EvalConfig
) -> RunLog:
    """Federated training with the given attackers; returns the run's log.

    As the contract does, a trainer flagged 1 (slashed) is ejected: it submits nothing in the later
    rounds; one flagged 3 (excluded) stays. Free riders that replay the market's history skip round 1; the history
    names each update's trainer, as reveals do, so a griefer can aim (`History.pairs`).
    The scores count only what the previous step does not explain (`float_step`, zero in round 1). Under every rule
    but FedAvg (`none`, no market) the aggregator challenges each replay of another trainer's accepted update of the
    last `LOOKBACK` rounds (PROTOCOL §3, `find_replays` over the proof views) and the round counts it as absent.
    """
    build, view = task.build_model, task.view()
    g = g_prev = flatten(task.model(cfg.seed))
    curve: list[float] = []
    present_log: list[list[int]] = []
    flag_log: list[list[int]] = []
    score_log: list[list[int]] = []
    spec = get_attack(attack) if attack is not None else None
    if spec is not None and spec.poison is not None:
        parts = [spec.poison(d, task.num_classes) if i in attackers else d for i, d in enumerate(parts)]
    ejected: set[int] = set()
    replayed_log: list[list[int]] = []
    sources: dict[tuple[int, int], torch.Tensor] = {}  # the last LOOKBACK rounds' accepted proof views
    challenges = rule.rule != RuleName.NONE
    history: History | None = None
    last: dict[int, torch.Tensor] = {}  # each trainer's last published update, and the one before it
    before: dict[int, torch.Tensor] = {}

    def idle(taken: tuple[int, ...] = ()) -> None:
        """A round nobody submits to (or whose every update was a replay taken out, `taken`): the model stays."""
        curve.append(curve[-1] if curve else evaluate(build, g, task.test)[1])
        present_log.append([])
        flag_log.append([])
        score_log.append([])
        replayed_log.append(list(taken))

    for r in range(cfg.rounds):
        waits = spec is not None and spec.history and history is None
        present = [i for i in range(len(parts)) if i not in ejected and not (waits and i in attackers)]
        if not present:  # everyone ejected: the market stops, the model stays
            idle()
            continue
        lazy = spec is not None and not spec.trains
        trained = [i for i in present if not (lazy and i in attackers)]
        honest = dict(zip(trained, round_updates(task, g, parts, r, cfg, trained)))
        updates = [honest[i] if i in honest else torch.zeros_like(g) for i in present]
        bad = [k for k, i in enumerate(present) if i in attackers]
        if attack is not None and bad:
            updates = craft(attack, updates, bad, seed=cfg.seed * 7919 + r, history=history,
                            mine=[last.get(present[k]) for k in bad])
        q = torch.stack([quantize(u, cfg.spec) for u in updates])
        v = validation_direction(build, g, task.val, view, cfg.spec)
        if cfg.decline_against:  # an honest trainer keeps an update against v: it is absent from the round
            a = inner_products(q[:, view[0] : view[0] + view[1]], v)
            keep = [k for k, i in enumerate(present) if i in attackers or a[k] > 0]
            present, q = [present[k] for k in keep], q[keep]
            bad = [k for k, i in enumerate(present) if i in attackers]
            if not present:
                idle()
                continue
        seq = submission_order(len(present), attack, bad, cfg.seed * 104_729 + r)
        for k, i in enumerate(present):
            if i in last:
                before[i] = last[i]
            last[i] = dequantize(q[k], cfg.spec)
        views = {i: q[k, view[0] : view[0] + view[1]] for k, i in enumerate(present)}
        taken = find_replays(views, sources) if challenges else {}
        sources = {(t, i): u for (t, i), u in sources.items() if t > r - LOOKBACK}
        keep = [k for k, i in enumerate(present) if i not in taken]
        if not keep:
            idle(tuple(sorted(taken)))
            continue
        step = float_step(g, g_prev, view, cfg.spec)
        h = split_direction(build, g, task.val, view, cfg.spec, cfg.hp)
        out = aggregate_round(q[keep, view[0] : view[0] + view[1]], q[keep], v, g, cfg.spec, rule, [seq[k] for k in keep],
                              step=step, joined=len(parts), split=h)
        pairs = tuple((last[i], before[i]) for i in sorted(before) if i not in attackers)
        history = replace(published(g, out.new_global, q, cfg.spec, task, cfg.hp), pairs=pairs)
        g_prev, g = g, out.new_global
        kept = [present[k] for k in keep]
        sources.update({(r, i): views[i] for i, f in zip(kept, out.flags) if f == 0})  # a settled round's accepted
        ejected |= {i for i, f in zip(kept, out.flags) if f == 1}
        curve.append(evaluate(build, g, task.test)[1])
        present_log.append(kept)
        flag_log.append(out.flags)
        score_log.append(out.scores)
        replayed_log.append(sorted(taken))
    return RunLog(curve[-1], curve, present_log, flag_log, score_log, attackers, len(parts), replayed_log)


def centralized(task: Task, cfg: EvalConfig) -> float:
    """Test accuracy of the same model trained on the union of the trainers' data (same epochs in all)."""
    hp = replace(cfg.hp, epochs=cfg.hp.epochs * cfg.rounds, seed=cfg.seed)
    g = flatten(task.model(cfg.seed))
    return evaluate(task.build_model, g + local_update(task.build_model, g, task.train, hp, torch.device("cpu")), task.test)[1]


def detection(logs: list[RunLog]) -> dict[str, float]:
    """Precision and recall of flags (1 slashed or 3 excluded) and of replays taken out against the true attackers,
    over the trainers that submitted in each round of each run."""
    tp = fp = fn = 0
    for log in logs:
        tp, fp = tp + len(log.taken_out(honest=False)), fp + len(log.taken_out())
        for who, round_flags in zip(log.present, log.flags):
            for i, f in zip(who, round_flags):
                flagged, bad = f != 0, i in log.attackers
                tp, fp, fn = tp + (flagged and bad), fp + (flagged and not bad), fn + (bad and not flagged)
    return {"precision": tp / (tp + fp) if tp + fp else 1.0, "recall": tp / (tp + fn) if tp + fn else 1.0}


def reward_share(log: RunLog) -> float:
    """Mean over rounds of the attackers' share of the round budget (proportional to max(score, 0))."""
    return float(np.mean([sum(v for i, v in shares.items() if i in log.attackers) for shares in log.shares()]))


def free_rider_ratio(log: RunLog, start: int = 1) -> float:
    """The best-paid attacker's mean share over the rounds from `start` (0-based; absent rounds pay 0)
    divided by the honest trainers' mean share over the same rounds (0 when honest trainers earn nothing
    or there are no such rounds)."""
    shares = log.shares()[start:]
    if not shares:
        return 0.0
    honest = [i for i in sorted({i for who in log.present for i in who}) if i not in log.attackers]
    honest_mean = float(np.mean([s.get(i, 0.0) for s in shares for i in honest]))
    best = max(float(np.mean([s.get(i, 0.0) for s in shares])) for i in log.attackers)
    return best / honest_mean if honest_mean else 0.0


def honest_harm(log: RunLog) -> dict[str, int]:
    """Honest trainers slashed (each at most once: it is ejected), honest exclusions (trainer-rounds flagged 3),
    the honest trainers excluded at least once, the honest trainer-rounds kept (`RunLog.kept`) and those taken out
    as replays."""
    excluded = log.flagged(3)
    return {"slashed": len(log.flagged(1)), "excluded": len(excluded), "excluded_trainers": len({i for _, i in excluded}),
            "kept": len(log.kept()), "replayed": len(log.taken_out())}


def noisy_labels(data: Split, rate: float, seed: int) -> Split:
    """Replace a `rate` fraction of labels by uniformly random classes (lower data quality)."""
    gen = torch.Generator().manual_seed(seed)
    flip = torch.rand(len(data), generator=gen) < rate
    return Split(data.x, torch.where(flip, torch.randint(0, 10, (len(data),), generator=gen), data.y))


def shapley_trainers(task: Task, cfg: EvalConfig) -> tuple[list[Split], list[Split]]:
    """The Shapley cases' `cfg.shapley_n` Dirichlet trainers: as they are (plain non-IID), and graded, trainer i's
    labels noisy at rate i / n (data quality that differs)."""
    idx = dirichlet_partition(task.train.y.numpy(), cfg.shapley_n, cfg.alpha, cfg.seed)
    plain = [task.train.subset(p) for p in idx]
    return plain, [noisy_labels(p, i / cfg.shapley_n, cfg.seed * 31 + i) for i, p in enumerate(plain)]


def shapley_agreement(
    task: Task, parts: list[Split], cfg: EvalConfig,
    score: Callable[[list[int], list[bool]], list[int]] | None = None,
) -> dict[str, Any]:
    """Spearman rho between proven first-order Shapley and exact accuracy Shapley over clean FedAvg rounds.

    Also exact validation-loss Shapley, the smooth utility the proven score linearises: how well
    the proven score tracks it, and how well even it agrees with accuracy Shapley (a ceiling for
    any loss-based score when accuracy differences are mostly evaluation noise).
    """
    build, view = task.build_model, task.view()
    g = g_prev = flatten(task.model(cfg.seed))
    n = len(parts)
    rhos, proven_total, acc_total, loss_total = [], np.zeros(n), np.zeros(n), np.zeros(n)
    evals, seconds = 0, 0.0
    for r in range(cfg.rounds):
        q = torch.stack([quantize(u, cfg.spec) for u in round_updates(task, g, parts, r, cfg)])
        v = validation_direction(build, g, task.val, view, cfg.spec)
        step = float_step(g, g_prev, view, cfg.spec)
        out = aggregate_round(q[:, view[0] : view[0] + view[1]], q, v, g, cfg.spec, RuleConfig(rule=RuleName.NONE), step=step)
        steps = [dequantize(row, cfg.spec) for row in q]
        report = exact_shapley(n, coalition_accuracy(build, g, steps, task.val))
        evals, seconds = evals + report.evaluations, seconds + report.seconds
        scores = out.scores if score is None else score(out.inner, out.accepted)
        rhos.append(float(spearmanr(scores, report.values).statistic))
        proven_total += np.array(scores, dtype=np.float64) / max(1, max(abs(s) for s in scores))
        acc_total += np.array(report.values)
        loss_total += np.array(exact_shapley(n, coalition_accuracy(build, g, steps, task.val, "loss")).values)
        g_prev, g = g, out.new_global
    return {
        "rho": float(spearmanr(proven_total, acc_total).statistic),
        "rho_per_round": rhos,
        "rho_proven_vs_loss_shapley": float(spearmanr(proven_total, loss_total).statistic),
        "rho_loss_shapley_vs_accuracy_shapley": float(spearmanr(loss_total, acc_total).statistic),
        "exact_shapley_evaluations": evals,
        "exact_shapley_seconds": seconds,
    }


#: The own-data run's model file: a small MLP over the 30 features of scikit-learn's breast cancer data.
OWN_MODEL = '''"""A small MLP for fedmarket eval's own-data run (breast cancer: 30 features, 2 classes)."""

from torch import nn


def build_model() -> nn.Module:
    """30 standardised features -> 16 hidden units -> 2 logits."""
    return nn.Sequential(nn.Linear(30, 16), nn.ReLU(), nn.Linear(16, 2))
'''


@dataclass(frozen=True)
class OwnDataConfig:
    """The own-data run: trainers, rounds and the hyper-parameters the owner would declare.

    Full-batch local steps (the batch holds a trainer's whole share): every trainer takes the same number of
    steps per round whatever its data size, so update norms compare like with like under the norm floor. With
    mini-batches of 16, a Dirichlet(0.5) trainer holding 10 rows takes a tenth of the median's steps and its
    honest update falls below the floor (slashed: 1 of 6 trainers on seeds 0 and 2, measured)."""

    n_trainers: int = 6
    rounds: int = 5
    hp: HyperParams = field(default_factory=lambda: HyperParams(epochs=5, batch_size=512, lr=0.5))
    bits: int = 16


def write_own_data(out_dir: Path) -> tuple[Path, Path]:
    """scikit-learn's breast cancer data (569 rows, feature stds from 0.003 to 569) as a CSV with a
    `label` column, and `OWN_MODEL` as a model file, in out_dir: a data set the product does not ship."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    names = [str(n).replace(" ", "_") for n in data.feature_names]
    rows = np.column_stack([data.data, data.target])
    csv, model = out_dir / "breast_cancer.csv", out_dir / "breast_cancer_model.py"
    np.savetxt(csv, rows, fmt=["%.10g"] * len(names) + ["%d"], delimiter=",", header=",".join([*names, "label"]), comments="")
    model.write_text(OWN_MODEL)
    return csv, model


def own_data_run(out_dir: Path, cfg: EvalConfig, own: OwnDataConfig = OwnDataConfig()) -> dict[str, Any]:
    """A project on `write_own_data`'s CSV and model file through the product's own-data path (label column,
    standardised with the validation split's statistics), its quantization scale fitted to the owner's trial
    round on its validation split: the default rule over `own.n_trainers` Dirichlet(cfg.alpha) trainers, and
    `own_data_accuracy_ratio` = its final test accuracy over a centralised model's on the union of their data."""
    csv, model = write_own_data(out_dir)
    task = task_from_files("breast_cancer", csv, model, seed=cfg.seed, label_column="label", preprocess="standardize")
    g0 = flatten(task.model(cfg.seed))
    trial = local_update(task.build_model, g0, task.val, replace(own.hp, seed=cfg.seed), torch.device("cpu"))
    spec = QuantSpec(own.bits, fit_scale_log2(trial, g0, own.bits))
    run_cfg = replace(cfg, n_trainers=own.n_trainers, rounds=own.rounds, hp=own.hp, spec=spec)
    idx = dirichlet_partition(task.train.y.numpy(), own.n_trainers, cfg.alpha, cfg.seed)
    parts = [task.train.subset(p) for p in idx]
    log = simulate(task, parts, RuleConfig(), None, [], run_cfg)
    central, harm = centralized(task, run_cfg), honest_harm(log)
    return {
        "data": csv.name, "model": model.name, "rows": len(task.train) + len(task.val) + len(task.test),
        "trainers": own.n_trainers, "rounds": own.rounds, "hp": vars(own.hp), "scale_log2": spec.scale_log2,
        "initial_accuracy": evaluate(task.build_model, g0, task.test)[1], "federated_accuracy": log.accuracy,
        "centralized_accuracy": central, "own_data_accuracy_ratio": log.accuracy / central,
        "honest_slashed": harm["slashed"], "honest_excluded_rounds": harm["excluded"],
    }


def pick_attackers(n: int, count: int, seed: int) -> list[int]:
    """A fixed random set of attacker indices; smaller sets are prefixes of larger ones."""
    return sorted(np.random.default_rng(seed + 1).permutation(n)[: count].tolist())


def _setup(cfg: EvalConfig) -> tuple[Task, list[Split]]:
    """The digits task and the trainers' Dirichlet partitions."""
    task = digits_task("softmax")
    idx = dirichlet_partition(task.train.y.numpy(), cfg.n_trainers, cfg.alpha, cfg.seed)
    return task, [task.train.subset(p) for p in idx]


def _job(args: tuple[EvalConfig, str, str | None, int, bool]) -> RunLog:
    """One simulation in a worker: (cfg, rule name, attack, attacker count, attackers absent?)."""
    cfg, rule, attack, count, absent = args
    torch.set_num_threads(1)
    task, parts = _setup(cfg)
    attackers = pick_attackers(cfg.n_trainers, count, cfg.seed)
    if absent:
        return simulate(task, [p for i, p in enumerate(parts) if i not in attackers], cfg.rules[rule], None, [], cfg)
    return simulate(task, parts, cfg.rules[rule], attack, attackers, cfg)


def run(out_dir: Path | str = "eval-out", cfg: EvalConfig = EvalConfig()) -> dict[str, Any]:
    """Run the whole evaluation; write eval.json and PNG plots into out_dir; return the figures."""
    start = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs: dict[tuple[str, str], tuple[EvalConfig, str, str | None, int, bool]] = {}
    for name in cfg.rules:
        jobs[name, "clean"] = (cfg, name, None, 0, False)
        for count in cfg.counts:
            jobs[name, f"honest_only@{count}"] = (cfg, name, None, count, True)
            for attack in cfg.attacks:
                jobs[name, f"{attack}@{count}"] = (cfg, name, attack, count, False)
    with multiprocessing.get_context("fork").Pool(cfg.workers) as pool:
        results = pool.map(_job, list(jobs.values()), chunksize=1)
    logs: dict[str, dict[str, RunLog]] = {name: {} for name in cfg.rules}
    for (name, key), log in zip(jobs, results):
        logs[name][key] = log
    torch.set_num_threads(1)
    task, parts = _setup(cfg)
    plain, graded = shapley_trainers(task, cfg)
    agreement = {"graded_quality": shapley_agreement(task, graded, cfg), "plain_noniid": shapley_agreement(task, plain, cfg)}
    result = summarise(logs, cfg, centralized(task, cfg), agreement)
    result["own_data"] = own_data_run(out_dir, cfg)
    result["own_data_accuracy_ratio"] = result["own_data"]["own_data_accuracy_ratio"]
    result["honest_slashed_own_data"] = result["own_data"]["honest_slashed"]
    result["honest_slashed_total"] += result["honest_slashed_own_data"]
    from aggregator.eval.sybil import sybil_v_figures  # built on this module's simulation helpers

    result |= sybil_v_figures(task, parts, cfg)
    result["seconds"] = time.perf_counter() - start
    (out_dir / "eval.json").write_text(json.dumps(result, indent=2, sort_keys=True))
    plot(logs, cfg, agreement, out_dir)
    return result


#: Headline figures and how seeds combine into the worst case reported by `run_seeds`.
HEADLINE = {
    "max_accuracy_drop_points_3of10": max, "max_accuracy_drop_vs_honest_only_points_3of10": max,
    "detection_recall": min, "detection_precision": min, "detection_recall_poisoning": min,
    "detection_precision_poisoning": min, "spearman_rho": min, "spearman_rho_plain_noniid": min,
    "clean_accuracy": min, "centralized_accuracy": min, "sybil_v_share": max, "sybil_v_share_uncapped": max,
    "sybil_v_fair_share": max, "honest_slashed_total": max, "honest_slashed_own_data": max,
    "honest_excluded_rounds_total": max, "honest_kept_rounds_total": max, "honest_replayed_rounds_total": max,
    "free_rider_share_ratio": max, "own_data_accuracy_ratio": min,
}


def print_study(table: dict[str, dict[str, Any]], as_json: bool) -> None:
    """Print a study script's table (scripts/): as JSON, or one line per row of `key=value` pairs."""
    if as_json:
        print(json.dumps(table, indent=2))
        return
    width = max((len(key) for key in table), default=0) + 1
    for key, row in table.items():
        print(f"{key:{width}s} " + " ".join(f"{k}={v}" for k, v in row.items()))


def run_seeds(out_dir: Path | str = "eval-out", seeds: tuple[int, ...] = (0, 1, 2), cfg: EvalConfig = EvalConfig()) -> dict[str, Any]:
    """`run` once per seed (data split, initial model, attackers, training order) into out_dir/seed<s>;
    the headline figures are the worst over the seeds, each seed's beside them. Writes eval.json."""
    start = time.perf_counter()
    out_dir = Path(out_dir)
    per_seed = {s: run(out_dir / f"seed{s}", replace(cfg, seed=s)) for s in seeds}
    result: dict[str, Any] = {key: worst(r[key] for r in per_seed.values()) for key, worst in HEADLINE.items()}
    result["seeds"] = list(seeds)
    result["per_seed"] = {str(s): {k: r[k] for k in HEADLINE} for s, r in per_seed.items()}
    result["sybil_v_shares_per_round"] = {str(s): r["sybil_v_shares_per_round"] for s, r in per_seed.items()}
    result["per_attack"] = {str(s): r["per_attack"] for s, r in per_seed.items()}
    result["free_rider_share_ratios"] = {str(s): r["rules"][DEFAULT_RULE]["free_rider_share_ratio"] for s, r in per_seed.items()}
    result["config"] = {**per_seed[seeds[0]]["config"], "seed": list(seeds)}
    result["seconds"] = time.perf_counter() - start
    (out_dir / "eval.json").write_text(json.dumps(result, indent=2, sort_keys=True))
    return result


def summarise(
    logs: dict[str, dict[str, RunLog]], cfg: EvalConfig, central_acc: float, agreement: dict[str, Any]
) -> dict[str, Any]:
    """The figures: accuracies, drops, detection per rule and attack, Shapley agreement."""
    top = max(cfg.counts)
    rules: dict[str, Any] = {}
    for name, runs in logs.items():
        clean = runs["clean"].accuracy
        attacked = [runs[f"{a}@{c}"] for a in cfg.attacks for c in cfg.counts]
        poisoning = [runs[f"{a}@{c}"] for a in cfg.attacks for c in cfg.counts if a not in FREE_RIDERS]
        harm = {k: honest_harm(v) for k, v in runs.items()}
        rules[name] = {
            "clean_accuracy": clean,
            "accuracy": {k: v.accuracy for k, v in runs.items() if k != "clean"},
            f"drop_points_{top}of{cfg.n_trainers}": {a: 100 * (clean - runs[f"{a}@{top}"].accuracy) for a in cfg.attacks},
            f"drop_vs_honest_only_points_{top}of{cfg.n_trainers}": {
                a: 100 * (runs[f"honest_only@{top}"].accuracy - runs[f"{a}@{top}"].accuracy) for a in cfg.attacks
            },
            "detection": {a: detection([runs[f"{a}@{c}"] for c in cfg.counts]) for a in cfg.attacks},
            "detection_all": detection([runs["clean"], *attacked]),
            "detection_poisoning": detection([runs["clean"], *poisoning]),
            "free_rider_reward_share": {
                a: reward_share(runs[f"{a}@{top}"]) for a in cfg.attacks if a in FREE_RIDERS
            },
            "free_rider_share_ratio": {
                f"{a}@{c}": free_rider_ratio(runs[f"{a}@{c}"]) for a in cfg.attacks if a in FREE_RIDERS for c in cfg.counts
            },
            f"attacker_share_{top}of{cfg.n_trainers}": {a: reward_share(runs[f"{a}@{top}"]) for a in cfg.attacks},
            "honest_slashed": {k: h["slashed"] for k, h in harm.items()},
            "honest_excluded_rounds": {k: h["excluded"] for k, h in harm.items()},
            "honest_excluded_trainers": {k: h["excluded_trainers"] for k, h in harm.items()},
            "honest_kept_rounds": {k: h["kept"] for k, h in harm.items()},
            "honest_replayed_rounds": {k: h["replayed"] for k, h in harm.items()},
        }
    d = rules[DEFAULT_RULE]
    ratios = d["free_rider_share_ratio"]
    return {
        "config": {
            "n_trainers": cfg.n_trainers, "alpha": cfg.alpha, "rounds": cfg.rounds, "hp": vars(cfg.hp),
            "quant": {"bits": cfg.spec.bits, "scale_log2": cfg.spec.scale_log2}, "seed": cfg.seed,
            "sybil_rounds": cfg.sybil_rounds, "rules": {k: vars(v) for k, v in cfg.rules.items()}, "default_rule": DEFAULT_RULE,
        },
        "centralized_accuracy": central_acc,
        "clean_accuracy": d["clean_accuracy"],
        "max_accuracy_drop_points_3of10": max(d[f"drop_points_{top}of{cfg.n_trainers}"].values()),
        "max_accuracy_drop_vs_honest_only_points_3of10": max(d[f"drop_vs_honest_only_points_{top}of{cfg.n_trainers}"].values()),
        "honest_slashed_total": sum(d["honest_slashed"].values()),
        "honest_excluded_rounds_total": sum(d["honest_excluded_rounds"].values()),
        "honest_kept_rounds_total": sum(d["honest_kept_rounds"].values()),
        "honest_replayed_rounds_total": sum(d["honest_replayed_rounds"].values()),
        "free_rider_share_ratio": max(ratios.values()) if ratios else 0.0,
        "per_attack": {
            a: {
                "drop_points": d[f"drop_points_{top}of{cfg.n_trainers}"][a],
                "honest_slashed": d["honest_slashed"][f"{a}@{top}"],
                "honest_excluded_rounds": d["honest_excluded_rounds"][f"{a}@{top}"],
                "honest_excluded_trainers": d["honest_excluded_trainers"][f"{a}@{top}"],
                "honest_kept_rounds": d["honest_kept_rounds"][f"{a}@{top}"],
                "honest_replayed_rounds": d["honest_replayed_rounds"][f"{a}@{top}"],
                "attacker_share": d[f"attacker_share_{top}of{cfg.n_trainers}"][a],
            }
            for a in cfg.attacks
        },
        "detection_recall": d["detection_all"]["recall"],
        "detection_precision": d["detection_all"]["precision"],
        "detection_recall_poisoning": d["detection_poisoning"]["recall"],
        "detection_precision_poisoning": d["detection_poisoning"]["precision"],
        "spearman_rho": agreement["graded_quality"]["rho"],
        "spearman_rho_plain_noniid": agreement["plain_noniid"]["rho"],
        "shapley": agreement,
        "rules": rules,
    }


def plot(logs: dict[str, dict[str, RunLog]], cfg: EvalConfig, agreement: dict[str, Any], out_dir: Path) -> None:
    """accuracy.png (per attack and rule, most attackers), curves.png (default rule), shapley.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    top = max(cfg.counts)
    fig, ax = plt.subplots(figsize=(10, 4))
    width = 0.8 / len(logs)
    for j, (name, runs) in enumerate(logs.items()):
        xs = np.arange(len(cfg.attacks)) + j * width
        ax.bar(xs, [100 * runs[f"{a}@{top}"].accuracy for a in cfg.attacks], width, label=name)
        ax.axhline(100 * runs["clean"].accuracy, color=f"C{j}", linestyle=":", linewidth=1)
    ax.set_xticks(np.arange(len(cfg.attacks)) + 0.4 - width / 2, cfg.attacks, rotation=20)
    ax.set_ylabel(f"test accuracy (%), {top} of {cfg.n_trainers} attackers")
    ax.legend(fontsize=8, ncol=len(logs), loc="lower center", bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout()
    fig.savefig(out_dir / "accuracy.png", dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 4))
    for key, log in logs[DEFAULT_RULE].items():
        if key == "clean" or key.endswith(f"@{top}"):
            ax.plot(range(1, cfg.rounds + 1), [100 * a for a in log.curve], label=key)
    ax.set_xlabel("round")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(DEFAULT_RULE)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_dir / "curves.png", dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, a in agreement.items():
        ax.plot(range(1, cfg.rounds + 1), a["rho_per_round"], marker="o", label=f"{name} (cumulative {a['rho']:.2f})")
    ax.set_xlabel("round")
    ax.set_ylabel("Spearman rho, proven vs accuracy Shapley")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "shapley.png", dpi=100)
    plt.close(fig)
