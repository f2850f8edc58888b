"""What a coalition of the owner's and aggregator's accounts takes with a validation direction aimed against the rest.

The aggregator commits v before the submissions (PROTOCOL §4), so it cannot aim at updates it has not seen; what it
can do is commit -v, minus the validation gradient that the honest updates follow, and have its k accounts submit
their own honest updates sign-flipped, so that they alone are along it. In the eval's simulation (digits, 10
non-IID trainers, the default rule, `aggregator.eval.evaluate`), for k = 1 to 4 and seeds 0, 1, 2, over `--rounds`
rounds from g(0) (the model follows the poisoned average), this prints the coalition's mean share of a round under
PROTOCOL §7 (`round_weights`, with the few-accepted split) and under the split before it (ec74def: the accepted by
score; the excluded equally only when none is accepted), its fair share k / 10, and the fewest and most updates
accepted in a round. Usage: `.venv/bin/python scripts/aimed_coalition.py [--rounds 5] [--json]`.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
from collections.abc import Sequence
from fractions import Fraction

import torch

from aggregator.eval.evaluate import EvalConfig, _setup, pick_attackers, round_updates
from aggregator.rules.direction import validation_direction
from aggregator.rules.novelty import float_step
from aggregator.rules.round import aggregate_round
from market.ml.tasks import flatten
from market.protocol.money import round_weights, weight_shares
from market.protocol.quant import quantize


def weights_before(flags: Sequence[int], scores: Sequence[int]) -> list[int]:
    """The split of ec74def: the accepted by max(score, 0) (equally when none is positive), or the excluded
    equally when none is accepted."""
    accepted = [f == 0 for f in flags]
    if not any(accepted):
        return [int(f == 3) for f in flags]
    weights = [max(s, 0) if ok else 0 for s, ok in zip(scores, accepted, strict=True)]
    return weights if any(weights) else [int(ok) for ok in accepted]


def run(args: tuple[int, int, int]) -> dict[str, float]:
    """One coalition of `k` accounts, seed `seed`, `rounds` rounds with -v."""
    seed, k, rounds = args
    torch.set_num_threads(1)
    cfg = EvalConfig(seed=seed)
    task, parts = _setup(cfg)
    coalition = pick_attackers(cfg.n_trainers, k, seed)
    view = task.view()
    rule = next(iter(cfg.rules.values()))
    g = g_prev = flatten(task.model(cfg.seed))
    now = before = Fraction(0)
    accepted: list[int] = []
    for r in range(rounds):
        updates = round_updates(task, g, parts, r, cfg)
        updates = [-u if i in coalition else u for i, u in enumerate(updates)]
        q = torch.stack([quantize(u, cfg.spec) for u in updates])
        v = -validation_direction(task.build_model, g, task.val, view, cfg.spec)
        step = float_step(g, g_prev, view, cfg.spec)
        out = aggregate_round(q[:, view[0] : view[0] + view[1]], q, v, g, cfg.spec, rule, step=step)
        g_prev, g = g, out.new_global
        flags, scores = list(out.flags), list(out.scores)
        accepted.append(flags.count(0))
        now += sum(s for i, s in enumerate(weight_shares(round_weights(flags, scores))) if i in coalition)
        before += sum(s for i, s in enumerate(weight_shares(weights_before(flags, scores))) if i in coalition)
    return {"share_now": round(float(now) / rounds, 4), "share_before": round(float(before) / rounds, 4),
            "fair_share": k / cfg.n_trainers, "accepted_min": min(accepted), "accepted_max": max(accepted)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    jobs = [(seed, k, args.rounds) for k in (1, 2, 3, 4) for seed in (0, 1, 2)]
    with multiprocessing.get_context("fork").Pool(2) as pool:
        rows = pool.map(run, jobs, chunksize=1)
    table = {f"k{k}@seed{seed}": row for (seed, k, _), row in zip(jobs, rows)}
    if args.json:
        print(json.dumps(table, indent=2))
        return
    for key, row in table.items():
        print(f"{key:10s} " + " ".join(f"{name}={value}" for name, value in row.items()))


if __name__ == "__main__":
    main()
