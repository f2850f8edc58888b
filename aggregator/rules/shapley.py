"""Proven contribution score: closed-form first-order Shapley value (docs/PROTOCOL.md §3)."""

from __future__ import annotations

import math

import torch

from aggregator.rules.distances import check_matrix, f64_blocks, gram_is_exact, gram_pass
from market.errors import AggregationError

I64_MIN, I64_MAX = -(2**63), 2**63 - 1


def inner_products(U: torch.Tensor, v: torch.Tensor) -> list[int]:
    """`a_i = <v, U[i]>` exactly, as Python ints (float64 while exact, else int64)."""
    n, d, m = check_matrix(U)
    if v.dtype != torch.int64 or v.shape != (d,):
        raise AggregationError(f"v must be int64 of length {d}, got {v.dtype} {tuple(v.shape)}")
    mv = check_matrix(v[None, :])[2]
    v = v.to(U.device)
    if gram_is_exact(d, m, mv):
        acc = torch.zeros(n, dtype=torch.float64, device=U.device)
        vf = v.to(torch.float64)
        for cols, block in f64_blocks(U):
            acc += block @ vf[cols]
        return [int(x) for x in acc.to(torch.int64).tolist()]
    if d * m * mv <= I64_MAX:
        return [int(x) for x in (U * v).sum(dim=1).tolist()]
    return [sum(int(x) * int(y) for x, y in zip(row, v.tolist())) for row in U.tolist()]


def sq_norms(U: torch.Tensor) -> list[int]:
    """Exact squared Euclidean norms `nsq(i)` of the rows (PROTOCOL §3), as Python ints."""
    return [inner_products(U[i : i + 1], U[i])[0] for i in range(U.shape[0])]


def distances_norms_inner(U: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, list[int], list[int]]:
    """`(dist, nsq, a)` of PROTOCOL §3 from one exact Gram pass over `[U; v]` (distances.gram_pass)."""
    gp = gram_pass(U, v)
    return gp.distances(), gp.sq_norms(), gp.inner()


def harmonic_parts(n: int) -> tuple[int, int]:
    """`(Q, P)` with Q = lcm(1..n) and P = sum_{k=2..n} Q // k, so H_n - 1 = P / Q."""
    q = math.lcm(*range(1, n + 1)) if n >= 1 else 1
    return q, sum(q // k for k in range(2, n + 1))


def first_order_shapley(a: list[int], accepted: list[bool]) -> list[int]:
    """Floored closed-form Shapley of U(S) = mean_{j in S} a_j over the accepted set; 0 elsewhere."""
    if len(a) != len(accepted):
        raise AggregationError("a and accepted differ in length")
    idx = [i for i, ok in enumerate(accepted) if ok]
    n = len(idx)
    scores = [0] * len(a)
    if n == 1:
        scores[idx[0]] = int(a[idx[0]])
    elif n >= 2:
        q, p = harmonic_parts(n)
        s = sum(int(a[i]) for i in idx)
        den = n * (n - 1) * q
        for i in idx:
            ai = int(a[i])
            scores[i] = ((n - 1) * q * ai + (n * ai - s) * p) // den
    if any(not I64_MIN <= x <= I64_MAX for x in scores):
        raise AggregationError("a score does not fit in int64")
    return scores
