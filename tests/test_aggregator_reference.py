"""The torch aggregation maths against a pure-Python reference on small random inputs (hypothesis)."""

from __future__ import annotations

import math
from fractions import Fraction
from itertools import combinations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.rules.distances import pairwise_sq_distances
from aggregator.rules.krum import multi_krum
from aggregator.rules.shapley import distances_norms_inner, first_order_shapley, inner_products


def ref_dist(U: list[list[int]]) -> list[list[int]]:
    """§3 distances, literally."""
    return [[sum((a - b) ** 2 for a, b in zip(x, y)) for y in U] for x in U]


def ref_krum(D: list[list[int]], f: int, m: int, tau: int) -> tuple[list[int], list[bool], list[bool]]:
    """§3 Multi-Krum, literally."""
    n0 = len(D)
    k = max(0, min(n0 - 1, n0 - f - 2))
    krum = [sum(sorted(D[i][j] for j in range(n0) if j != i)[:k]) for i in range(n0)]
    m_eff = min(n0, m if m > 0 else max(1, n0 - f))
    order = sorted(range(n0), key=lambda i: (krum[i], i))
    sel = [i in order[:m_eff] for i in range(n0)]
    s_ref = krum[order[m_eff - 1]]
    out = [not sel[i] and (tau == 0 or 100 * krum[i] > tau * s_ref) for i in range(n0)]
    return krum, sel, out


def brute_shapley(a: list[int]) -> list[Fraction]:
    """Exact Shapley of U(S) = mean_{j in S} a_j by enumerating coalitions, in fractions."""
    n = len(a)

    def u(s: tuple[int, ...]) -> Fraction:
        return Fraction(sum(a[j] for j in s), len(s)) if s else Fraction(0)

    phi = []
    for i in range(n):
        others = [j for j in range(n) if j != i]
        total = Fraction(0)
        for size in range(n):
            w = Fraction(math.factorial(size) * math.factorial(n - size - 1), math.factorial(n))
            total += sum(w * (u(tuple(sorted(c + (i,)))) - u(c)) for c in combinations(others, size))
        phi.append(total)
    return phi


matrices = st.integers(1, 7).flatmap(
    lambda n: st.integers(1, 12).flatmap(
        lambda d: st.lists(st.lists(st.integers(-40000, 40000), min_size=d, max_size=d), min_size=n, max_size=n)
    )
)


@settings(max_examples=60, deadline=None)
@given(matrices, st.integers(0, 4), st.integers(0, 6), st.sampled_from([0, 100, 120, 150, 300]))
def test_distances_and_krum_match_reference(U: list[list[int]], f: int, m: int, tau: int) -> None:
    D = pairwise_sq_distances(torch.tensor(U, dtype=torch.int64))
    assert D.tolist() == ref_dist(U)
    res = multi_krum(D, f, m, tau)
    krum, sel, out = ref_krum(ref_dist(U), f, m, tau)
    assert (res.krum_scores, res.selected, res.outlier) == (krum, sel, out)


@settings(max_examples=60, deadline=None)
@given(matrices, st.data())
def test_inner_products_and_shapley_match_reference(U: list[list[int]], data: st.DataObject) -> None:
    d = len(U[0])
    v = data.draw(st.lists(st.integers(-32767, 32767), min_size=d, max_size=d))
    accepted = data.draw(st.lists(st.booleans(), min_size=len(U), max_size=len(U)))
    Ut, vt = torch.tensor(U, dtype=torch.int64), torch.tensor(v, dtype=torch.int64)
    a = inner_products(Ut, vt)
    assert a == [sum(x * y for x, y in zip(row, v)) for row in U]
    D, nsq, a2 = distances_norms_inner(Ut, vt)
    assert a2 == a and D.tolist() == ref_dist(U) and nsq == [sum(x * x for x in row) for row in U]
    scores = first_order_shapley(a, accepted)
    idx = [i for i, ok in enumerate(accepted) if ok]
    exact = brute_shapley([a[i] for i in idx])
    for pos, i in enumerate(idx):
        assert scores[i] == math.floor(exact[pos])
    assert all(scores[i] == 0 for i in range(len(U)) if not accepted[i])
