"""How a v aimed against the honest updates could be bounded, and what each rule pays the eval's attackers.

PROTOCOL §7 pays a round's excluded slots (flag 3) alongside its accepted ones, equally, when at most
max(1, N // 4) of their N are accepted (`round_weights`, `adopted`): a v aimed so that every honest update is
against it and an own account's along it would otherwise hand that account the round. The rule is v-independent,
so it also fires on rounds of an honest v and then pays excluded attackers. For the default rule, 10 trainers, the
clean run and every attack at 3 attackers, seeds 0, 1, 2 (the eval's simulation, `aggregator.eval.evaluate.simulate`)
this prints per run the fewest accepted slots of a round with excluded ones (`min_accepted`), the rounds where the
adopted rule fires (`few_rounds`), and the attackers' mean share of a round under: the split of ec74def
(`before`: the accepted by score, the excluded equally only when none is accepted), two rejected candidates (the
accepted and excluded equally whenever the excluded are at least as many, `equal_majority`; an accepted slot capped
at 2 / N of the round with the excess to the excluded, `cap2`) and the adopted rule.

`--coalition`: what a coalition of the owner's and aggregator's accounts takes with a v aimed against the rest. The
aggregator commits v before the submissions (§4), so it cannot aim at updates it has not seen; it can commit -v,
minus the validation gradient that the honest updates follow, and have its k accounts submit their own honest
updates sign-flipped, so that they alone are along it. For k = 1 to 4 and the seeds, over `--rounds` rounds from
g(0) (the model follows the poisoned average), it prints the coalition's mean share of a round under the adopted
split and under `before`, its fair share k / 10, and the fewest and most updates accepted in a round.
Usage: `.venv/bin/python scripts/few_accepted.py [--seeds 0 1 2] [--coalition [--rounds 5]] [--json]`."""

from __future__ import annotations

import argparse
import multiprocessing
from collections.abc import Sequence
from fractions import Fraction

import torch

from aggregator.eval.evaluate import EvalConfig, RunLog, _job, _setup, pick_attackers, print_study, round_updates
from aggregator.rules.direction import validation_direction
from aggregator.rules.novelty import float_step
from aggregator.rules.round import aggregate_round
from market.ml.tasks import flatten
from market.protocol.money import pays_equally, round_weights, weight_shares
from market.protocol.quant import quantize


def weights_before(flags: Sequence[int], scores: Sequence[int]) -> list[int]:
    """The split of ec74def: the accepted by max(score, 0) (equally when none is positive), or the excluded
    equally when none is accepted."""
    accepted = [f == 0 for f in flags]
    if not any(accepted):
        return [int(f == 3) for f in flags]
    weights = [max(s, 0) if ok else 0 for s, ok in zip(scores, accepted, strict=True)]
    return weights if any(weights) else [int(ok) for ok in accepted]


def shares_equal_majority(flags: Sequence[int], scores: Sequence[int]) -> list[Fraction]:
    """Candidate: the accepted and the excluded equally when the excluded are at least as many."""
    accepted, excluded = flags.count(0), flags.count(3)
    if excluded and excluded >= accepted:
        return [Fraction(1, accepted + excluded) if f in (0, 3) else Fraction(0) for f in flags]
    return weight_shares(weights_before(flags, scores))


def shares_cap(flags: Sequence[int], scores: Sequence[int], c: int = 2) -> list[Fraction]:
    """Candidate: as before, but an accepted slot takes at most c / N of the round (N = accepted + excluded), the
    excess going to the excluded equally."""
    base = weight_shares(weights_before(flags, scores))
    n, excluded = flags.count(0) + flags.count(3), flags.count(3)
    if not excluded:
        return base
    cap = Fraction(c, n)
    capped = [min(s, cap) if f == 0 else s for s, f in zip(base, flags, strict=True)]
    excess = sum(base) - sum(capped)
    return [s + Fraction(excess) / excluded if f == 3 else s for s, f in zip(capped, flags, strict=True)]


RULES = {"before": lambda f, s: weight_shares(weights_before(f, s)), "equal_majority": shares_equal_majority,
         "cap2": shares_cap, "adopted": lambda f, s: weight_shares(round_weights(f, s))}


def figures(log: RunLog) -> dict[str, float]:
    """The fewest accepted in a round with excluded slots, the equal-split rounds, and the attackers' mean round
    share under each split."""
    out: dict[str, float] = {
        "min_accepted": min((f.count(0) for f in log.flags if 3 in f), default=-1),
        "few_rounds": sum(1 for f in log.flags if pays_equally(f)),
    }
    for label, rule in RULES.items():
        attackers = Fraction(0)
        for who, flags, scores in zip(log.present, log.flags, log.scores):
            shares = rule(flags, scores) if flags else []
            attackers += sum((s for i, s in zip(who, shares) if i in log.attackers), Fraction(0))
        out[f"attackers_{label}"] = round(float(attackers) / len(log.flags), 4)
    return out


def coalition(args: tuple[int, int, int]) -> dict[str, float]:
    """One coalition of `k` accounts, seed `seed`, `rounds` rounds with -v."""
    seed, k, rounds = args
    torch.set_num_threads(1)
    cfg = EvalConfig(seed=seed)
    task, parts = _setup(cfg)
    members = pick_attackers(cfg.n_trainers, k, seed)
    view = task.view()
    rule = next(iter(cfg.rules.values()))
    g = g_prev = flatten(task.model(cfg.seed))
    now = before = Fraction(0)
    accepted: list[int] = []
    for r in range(rounds):
        updates = round_updates(task, g, parts, r, cfg)
        updates = [-u if i in members else u for i, u in enumerate(updates)]
        q = torch.stack([quantize(u, cfg.spec) for u in updates])
        v = -validation_direction(task.build_model, g, task.val, view, cfg.spec)
        step = float_step(g, g_prev, view, cfg.spec)
        out = aggregate_round(q[:, view[0] : view[0] + view[1]], q, v, g, cfg.spec, rule, step=step)
        g_prev, g = g, out.new_global
        flags, scores = list(out.flags), list(out.scores)
        accepted.append(flags.count(0))
        now += sum(s for i, s in enumerate(weight_shares(round_weights(flags, scores))) if i in members)
        before += sum(s for i, s in enumerate(weight_shares(weights_before(flags, scores))) if i in members)
    return {"share_now": round(float(now) / rounds, 4), "share_before": round(float(before) / rounds, 4),
            "fair_share": k / cfg.n_trainers, "accepted_min": min(accepted), "accepted_max": max(accepted)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--coalition", action="store_true")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with multiprocessing.get_context("fork").Pool(2) as pool:
        if args.coalition:
            runs = [(seed, k, args.rounds) for k in (1, 2, 3, 4) for seed in args.seeds]
            rows = pool.map(coalition, runs, chunksize=1)
            table = {f"k{k}@seed{seed}": row for (seed, k, _), row in zip(runs, rows)}
        else:
            rule = next(iter(EvalConfig().rules))
            jobs = [(seed, attack) for seed in args.seeds for attack in (None, *EvalConfig().attacks)]
            logs = pool.map(_job, [(EvalConfig(seed=s), rule, a, 0 if a is None else 3, False) for s, a in jobs], chunksize=1)
            table = {f"{a or 'clean'}@seed{s}": figures(log) for (s, a), log in zip(jobs, logs)}
    print_study(table, args.json)


if __name__ == "__main__":
    main()
