"""End-to-end evaluation on digits: accuracy under attack, detection, and proven-vs-accuracy Shapley.

`run(out_dir)` simulates `n_trainers` non-IID trainers (Dirichlet alpha) for `rounds` rounds with
the exact PROTOCOL §3 pipeline (quantize, validation direction, outlier rule, first-order
Shapley of the median-capped a's, average), for every attack with 0, 2 and 3 attackers and every
rule, and writes `eval.json` and PNG plots into `out_dir`.

Definitions. Accuracy drops are in points of test accuracy against the same rule's clean run
(all trainers honest) and against its honest-only run (the attackers absent: the data they
withhold is lost whatever the rule). Detection counts outlier flags per trainer and round:
`detection_*` over every attack (free riders included: the §3 screens catch copies, which are
submitted after their victims, and zero updates) plus the clean run, `detection_*_poisoning`
without the free riders; `free_rider_reward_share` is what free riders still earn. `run_seeds`
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
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import spearmanr

from aggregator.eval.reports import coalition_accuracy, exact_shapley
from aggregator.rules.direction import validation_direction
from aggregator.rules.round import aggregate_round
from market.ml.attacks import ATTACKS, craft, get_attack
from market.ml.tasks import Task, digits_task, dirichlet_partition, flatten
from market.ml.tasks.base import Split
from market.ml.training import evaluate, local_update
from market.protocol.manifest import HyperParams, RuleConfig, RuleName
from market.protocol.quant import QuantSpec, dequantize, quantize

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


@dataclass(frozen=True)
class RunLog:
    """One simulation: final test accuracy, per-round accuracy, outlier flags and scores."""

    accuracy: float
    curve: list[float]
    outlier: list[list[bool]]
    scores: list[list[int]]
    attackers: list[int]


def round_updates(task: Task, g: torch.Tensor, parts: list[Split], r: int, cfg: EvalConfig) -> list[torch.Tensor]:
    """Every trainer's honest local update in round r (seeded by trainer and round)."""
    return [
        local_update(task.build_model, g, d, replace(cfg.hp, seed=cfg.seed * 100_003 + r * 1_009 + i), torch.device("cpu"))
        for i, d in enumerate(parts)
    ]


def submission_order(n: int, attack: str | None, attackers: list[int], seed: int) -> list[int]:
    """Each trainer's submission rank in a round: random, except that copiers come after everyone
    else (a copier needs its victim's update before it can submit)."""
    perm = np.random.default_rng(seed).permutation(n).tolist()
    if attack is not None and get_attack(attack).copies:
        perm = [i for i in perm if i not in attackers] + [i for i in perm if i in attackers]
    seq = [0] * n
    for rank, i in enumerate(perm):
        seq[i] = rank
    return seq


def simulate(
    task: Task, parts: list[Split], rule: RuleConfig, attack: str | None, attackers: list[int], cfg: EvalConfig
) -> RunLog:
    """Federated training with the given attackers; returns the run's log."""
    build, view = task.build_model, task.view()
    g = flatten(task.model(cfg.seed))
    curve, flags, scores = [], [], []
    poison = get_attack(attack).poison if attack is not None else None
    if poison is not None:
        parts = [poison(d, task.num_classes) if i in attackers else d for i, d in enumerate(parts)]
    for r in range(cfg.rounds):
        updates = round_updates(task, g, parts, r, cfg)
        if attack is not None:
            updates = craft(attack, updates, attackers, seed=cfg.seed * 7919 + r)
        q = torch.stack([quantize(u, cfg.spec) for u in updates])
        v = validation_direction(build, g, task.val, view, cfg.spec)
        seq = submission_order(len(parts), attack, attackers, cfg.seed * 104_729 + r)
        out = aggregate_round(q[:, view[0] : view[0] + view[1]], q, v, g, cfg.spec, rule, seq)
        g = out.new_global
        curve.append(evaluate(build, g, task.test)[1])
        flags.append(out.outlier)
        scores.append(out.scores)
    return RunLog(curve[-1], curve, flags, scores, attackers)


def centralized(task: Task, cfg: EvalConfig) -> float:
    """Test accuracy of the same model trained on the union of the trainers' data (same epochs in all)."""
    hp = replace(cfg.hp, epochs=cfg.hp.epochs * cfg.rounds, seed=cfg.seed)
    g = flatten(task.model(cfg.seed))
    return evaluate(task.build_model, g + local_update(task.build_model, g, task.train, hp, torch.device("cpu")), task.test)[1]


def detection(logs: list[RunLog]) -> dict[str, float]:
    """Precision and recall of outlier flags against the true attackers, over rounds and runs."""
    tp = fp = fn = 0
    for log in logs:
        for round_flags in log.outlier:
            for i, flagged in enumerate(round_flags):
                bad = i in log.attackers
                tp, fp, fn = tp + (flagged and bad), fp + (flagged and not bad), fn + (bad and not flagged)
    return {"precision": tp / (tp + fp) if tp + fp else 1.0, "recall": tp / (tp + fn) if tp + fn else 1.0}


def reward_share(log: RunLog) -> float:
    """Mean over rounds of the attackers' share of the round budget (proportional to max(score, 0))."""
    shares = []
    for scores in log.scores:
        paid = [max(s, 0) for s in scores]
        shares.append(sum(paid[i] for i in log.attackers) / sum(paid) if sum(paid) else 0.0)
    return float(np.mean(shares))


def noisy_labels(data: Split, rate: float, seed: int) -> Split:
    """Replace a `rate` fraction of labels by uniformly random classes (lower data quality)."""
    gen = torch.Generator().manual_seed(seed)
    flip = torch.rand(len(data), generator=gen) < rate
    return Split(data.x, torch.where(flip, torch.randint(0, 10, (len(data),), generator=gen), data.y))


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
    g = flatten(task.model(cfg.seed))
    n = len(parts)
    rhos, proven_total, acc_total, loss_total = [], np.zeros(n), np.zeros(n), np.zeros(n)
    evals, seconds = 0, 0.0
    for r in range(cfg.rounds):
        q = torch.stack([quantize(u, cfg.spec) for u in round_updates(task, g, parts, r, cfg)])
        v = validation_direction(build, g, task.val, view, cfg.spec)
        out = aggregate_round(q[:, view[0] : view[0] + view[1]], q, v, g, cfg.spec, RuleConfig(rule=RuleName.NONE))
        steps = [dequantize(row, cfg.spec) for row in q]
        report = exact_shapley(n, coalition_accuracy(build, g, steps, task.val))
        evals, seconds = evals + report.evaluations, seconds + report.seconds
        scores = out.scores if score is None else score(out.inner, out.accepted)
        rhos.append(float(spearmanr(scores, report.values).statistic))
        proven_total += np.array(scores, dtype=np.float64) / max(1, max(abs(s) for s in scores))
        acc_total += np.array(report.values)
        loss_total += np.array(exact_shapley(n, coalition_accuracy(build, g, steps, task.val, "loss")).values)
        g = out.new_global
    return {
        "rho": float(spearmanr(proven_total, acc_total).statistic),
        "rho_per_round": rhos,
        "rho_proven_vs_loss_shapley": float(spearmanr(proven_total, loss_total).statistic),
        "rho_loss_shapley_vs_accuracy_shapley": float(spearmanr(loss_total, acc_total).statistic),
        "exact_shapley_evaluations": evals,
        "exact_shapley_seconds": seconds,
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
    y = task.train.y.numpy()
    idx = dirichlet_partition(y, cfg.shapley_n, cfg.alpha, cfg.seed)
    plain = [task.train.subset(p) for p in idx]
    graded = [noisy_labels(p, i / cfg.shapley_n, cfg.seed * 31 + i) for i, p in enumerate(plain)]
    agreement = {"graded_quality": shapley_agreement(task, graded, cfg), "plain_noniid": shapley_agreement(task, plain, cfg)}
    result = summarise(logs, cfg, centralized(task, cfg), agreement)
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
    "sybil_v_fair_share": max,
}


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
        }
    d = rules[DEFAULT_RULE]
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
