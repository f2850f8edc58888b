"""Multi-Krum with a tolerance (docs/PROTOCOL.md §3), on exact integer distances."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from market.errors import AggregationError


@dataclass(frozen=True)
class KrumResult:
    """Outcome of Multi-Krum over n0 valid updates, all lists in trainer-index order."""

    krum_scores: list[int]
    k: int
    m_eff: int
    s_ref: int
    order: list[int]
    selected: list[bool]
    outlier: list[bool]

    @property
    def accepted(self) -> list[bool]:
        """Valid and not an outlier."""
        return [not o for o in self.outlier]


def krum_k(n0: int, f: int) -> int:
    """Number of nearest neighbours summed: max(0, min(n0 - 1, n0 - f - 2))."""
    return max(0, min(n0 - 1, n0 - f - 2))


def effective_m(n0: int, f: int, m: int) -> int:
    """`m` if positive else max(1, n0 - f), capped at n0."""
    return min(n0, m if m > 0 else max(1, n0 - f))


def krum_scores(dist: torch.Tensor, k: int) -> list[int]:
    """Sum of the k smallest off-diagonal distances of each row, as Python ints (no overflow)."""
    n = dist.shape[0]
    if n == 0 or k == 0:
        return [0] * n
    masked = dist.clone()
    masked.fill_diagonal_(torch.iinfo(torch.int64).max)
    nearest = masked.sort(dim=1).values[:, :k].tolist()
    return [sum(row) for row in nearest]


def multi_krum(dist: torch.Tensor, f: int, m: int, tau_pct: int) -> KrumResult:
    """Multi-Krum: select the m_eff lowest (krum, index); flag the rest beyond tau_pct% of s_ref."""
    if dist.dtype != torch.int64 or dist.dim() != 2 or dist.shape[0] != dist.shape[1]:
        raise AggregationError(f"expected an int64 [n, n] distance matrix, got {tuple(dist.shape)}")
    if f < 0 or m < 0 or tau_pct < 0:
        raise AggregationError(f"f, m, tau_pct must be >= 0 (got {f}, {m}, {tau_pct})")
    n0 = dist.shape[0]
    k = krum_k(n0, f)
    scores = krum_scores(dist, k)
    if n0 == 0:
        return KrumResult([], k, 0, 0, [], [], [])
    m_eff = effective_m(n0, f, m)
    order = sorted(range(n0), key=lambda i: (scores[i], i))
    chosen = set(order[:m_eff])
    s_ref = scores[order[m_eff - 1]]
    selected = [i in chosen for i in range(n0)]
    outlier = [
        not selected[i] and (tau_pct == 0 or 100 * scores[i] > tau_pct * s_ref) for i in range(n0)
    ]
    return KrumResult(scores, k, m_eff, s_ref, order, selected, outlier)
