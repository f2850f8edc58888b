"""Exact pairwise squared distances between quantized updates (docs/PROTOCOL.md §3).

Fast path: the Gram matrix in float64. Every product |U[i,k] * U[j,k]| <= M**2 and every partial
sum of a row-by-row dot product is an integer of magnitude <= d * M**2, where M = max |U|. While
d * M**2 <= 2**53 every such integer is exactly representable, so each floating-point addition is
exact whatever order BLAS (or cuBLAS) chooses and the result is bit-identical on CPU and GPU.
Otherwise an exact int64 chunked computation is used (needs 4 * d * M**2 < 2**63).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from market.errors import AggregationError

F64_EXACT = 2**53
I64_MAX = 2**63 - 1
_CHUNK = 1 << 17


def check_matrix(U: torch.Tensor) -> tuple[int, int, int]:
    """Validate an int64 [n, d] matrix; return (n, d, max |U|)."""
    if U.dtype != torch.int64 or U.dim() != 2:
        raise AggregationError(f"expected an int64 [n, d] tensor, got {U.dtype} {tuple(U.shape)}")
    n, d = U.shape
    if not U.numel():
        return n, d, 0
    lo, hi = torch.aminmax(U)
    return n, d, max(-int(lo), int(hi))


def gram_is_exact(d: int, max_a: int, max_b: int) -> bool:
    """True when every partial sum of a d-long integer dot product is exact in float64."""
    return d * max_a * max_b <= F64_EXACT


def pairwise_sq_distances(U: torch.Tensor) -> torch.Tensor:
    """`dist(i, j) = sum_k (U[i,k] - U[j,k])**2` as an exact int64 [n, n] tensor (§3)."""
    _, d, m = check_matrix(U)
    if 4 * d * m * m > I64_MAX:
        raise AggregationError(f"distances overflow int64 (d={d}, max|U|={m})")
    if gram_is_exact(d, m, m):
        return _via_gram(U)
    return _via_int64(U)


def f64_blocks(U: torch.Tensor) -> Iterator[tuple[slice, torch.Tensor]]:
    """Column chunks of U converted to float64 (bounded memory)."""
    for c in range(0, U.shape[1], _CHUNK):
        cols = slice(c, c + _CHUNK)
        yield cols, U[:, cols].to(torch.float64)


def exact_gram(U: torch.Tensor) -> torch.Tensor:
    """`U @ U.T` as int64, via float64 over column chunks; the caller guarantees gram_is_exact."""
    n = U.shape[0]
    gram = torch.zeros((n, n), dtype=torch.float64, device=U.device)
    for _, block in f64_blocks(U):
        gram += block @ block.T
    return gram.to(torch.int64)


def gram_to_distances(g: torch.Tensor) -> torch.Tensor:
    """`dist(i, j) = g[i,i] + g[j,j] - 2 g[i,j]` (exact int64)."""
    sq = g.diagonal()
    return (sq[:, None] + sq[None, :] - 2 * g).fill_diagonal_(0)


def _via_gram(U: torch.Tensor) -> torch.Tensor:
    """Distances from the exact float64 Gram matrix."""
    return gram_to_distances(exact_gram(U))


def _via_int64(U: torch.Tensor) -> torch.Tensor:
    """Exact int64 fallback: row against all rows, column chunk by column chunk."""
    n, d = U.shape
    dist = torch.zeros((n, n), dtype=torch.int64, device=U.device)
    for c in range(0, d, _CHUNK):
        block = U[:, c : c + _CHUNK]
        for i in range(n):
            diff = block - block[i]
            dist[i] += (diff * diff).sum(dim=1)
    return dist
