"""Owner-facing contribution reports (not proven): accuracy-based Shapley and leave-one-out.

Exact Shapley enumerates all 2**n coalitions (n <= 10); beyond that GTG-Shapley (Liu et al.,
2022) samples permutations guided to start with each trainer in turn and truncates a permutation
once its prefix is within `eps` of the grand coalition's utility. Utilities are cached: the
number of distinct evaluations and the wall time are reported.
"""

from __future__ import annotations

import itertools
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from market.ml.tasks.base import Split
from market.ml.training import evaluate

Utility = Callable[[frozenset[int]], float]


@dataclass(frozen=True)
class ContributionReport:
    """Per-trainer values, the method used, distinct utility evaluations and seconds."""

    values: list[float]
    method: str
    evaluations: int
    seconds: float


class _Cached:
    """Memoised utility that counts distinct evaluations."""

    def __init__(self, utility: Utility) -> None:
        self.utility = utility
        self.cache: dict[frozenset[int], float] = {}

    def __call__(self, s: frozenset[int]) -> float:
        if s not in self.cache:
            self.cache[s] = self.utility(s)
        return self.cache[s]


def exact_shapley(n: int, utility: Utility) -> ContributionReport:
    """Shapley values by enumerating every coalition."""
    start, u = time.perf_counter(), _Cached(utility)
    values = [0.0] * n
    for i in range(n):
        others = [j for j in range(n) if j != i]
        for size in range(n):
            w = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
            for c in itertools.combinations(others, size):
                s = frozenset(c)
                values[i] += w * (u(s | {i}) - u(s))
    return ContributionReport(values, "exact", len(u.cache), time.perf_counter() - start)


def gtg_shapley(
    n: int, utility: Utility, seed: int = 0, max_perms: int = 200, eps: float = 1e-3, tol: float = 0.01
) -> ContributionReport:
    """GTG-Shapley: guided permutation sampling with within-permutation truncation."""
    start, u, rng = time.perf_counter(), _Cached(utility), random.Random(seed)
    full, empty = u(frozenset(range(n))), u(frozenset())
    sums, count = [0.0] * n, 0
    if abs(full - empty) >= eps:
        history: list[list[float]] = []
        for t in range(max_perms):
            rest = [j for j in range(n) if j != t % n]
            rng.shuffle(rest)
            prefix: frozenset[int] = frozenset()
            prev = empty
            for i in [t % n, *rest]:
                if abs(full - prev) < eps:
                    break
                cur = u(prefix | {i})
                sums[i] += cur - prev
                prefix, prev = prefix | {i}, cur
            count += 1
            history.append([s / count for s in sums])
            if count >= 2 * n and _converged(history[-n:], history[-2 * n], tol):
                break
    values = [s / count for s in sums] if count else [0.0] * n
    return ContributionReport(values, "gtg", len(u.cache), time.perf_counter() - start)


def _converged(recent: list[list[float]], old: list[float], tol: float) -> bool:
    """Mean relative change of the estimates over the last n permutations is below tol."""
    last = recent[-1]
    scale = sum(abs(x) for x in last) or 1.0
    return sum(abs(a - b) for a, b in zip(last, old)) / scale < tol


def leave_one_out(n: int, utility: Utility) -> ContributionReport:
    """U(all) - U(all without i)."""
    start, u = time.perf_counter(), _Cached(utility)
    full = frozenset(range(n))
    values = [u(full) - u(full - {i}) for i in range(n)]
    return ContributionReport(values, "leave_one_out", len(u.cache), time.perf_counter() - start)


def accuracy_shapley(n: int, utility: Utility, exact_max: int = 10, seed: int = 0) -> ContributionReport:
    """Exact Shapley for n <= exact_max, GTG-Shapley beyond."""
    return exact_shapley(n, utility) if n <= exact_max else gtg_shapley(n, utility, seed=seed)


def coalition_accuracy(
    build: Callable[[], nn.Module], g_prev: torch.Tensor, updates: list[torch.Tensor], data: Split,
    metric: str = "accuracy",
) -> Utility:
    """U(S) = accuracy (or, with metric="loss", minus the loss) on `data` of g_prev plus the mean of
    the updates in S (g_prev itself for S empty)."""
    if metric not in ("accuracy", "loss"):
        raise ValueError(f"metric must be 'accuracy' or 'loss', got {metric!r}")

    def utility(s: frozenset[int]) -> float:
        step = torch.stack([updates[i] for i in sorted(s)]).mean(dim=0) if s else torch.zeros_like(g_prev)
        loss, acc = evaluate(build, g_prev + step, data)
        return acc if metric == "accuracy" else -loss

    return utility
