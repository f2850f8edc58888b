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


def multi_krum(dist: torch.Tensor, f: int, m: int, tau_pct: int, n_round: int | None = None) -> KrumResult:
    """Multi-Krum: select the m_eff lowest (krum, index); flag the rest beyond tau_pct% of s_ref.

    `n_round` (default: the n0 here) is the project's joined trainers, `n_round - n0` of whom the screens took out,
    kept their update or are away (PROTOCOL §3): `k` is that of `n_round`, capped at n0 - 1, so that removing
    attackers first never leaves Multi-Krum without neighbours (k = 0 selects everything); the
    `n_round - m_eff(n_round)` unselected places stay unselected places (`m_eff = max(1, n0 - (n_round -
    m_eff(n_round)))`), so that honest updates taken out by the direction test, or kept by their trainers,
    cannot make room in the selection for far updates.
    """
    if dist.dtype != torch.int64 or dist.dim() != 2 or dist.shape[0] != dist.shape[1]:
        raise AggregationError(f"expected an int64 [n, n] distance matrix, got {tuple(dist.shape)}")
    if f < 0 or m < 0 or tau_pct < 0:
        raise AggregationError(f"f, m, tau_pct must be >= 0 (got {f}, {m}, {tau_pct})")
    n0 = dist.shape[0]
    nr = n0 if n_round is None else n_round
    if nr < n0:
        raise AggregationError(f"n_round = {nr} is below the {n0} updates")
    k = min(krum_k(nr, f), max(0, n0 - 1))
    scores = krum_scores(dist, k)
    if n0 == 0:
        return KrumResult([], k, 0, 0, [], [], [])
    m_eff = max(1, n0 - (nr - effective_m(nr, f, m)))
    order = sorted(range(n0), key=lambda i: (scores[i], i))
    chosen = set(order[:m_eff])
    s_ref = scores[order[m_eff - 1]]
    selected = [i in chosen for i in range(n0)]
    outlier = [
        not selected[i] and (tau_pct == 0 or 100 * scores[i] > tau_pct * s_ref) for i in range(n0)
    ]
    return KrumResult(scores, k, m_eff, s_ref, order, selected, outlier)
