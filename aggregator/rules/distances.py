"""Exact pairwise squared distances between quantized updates (docs/PROTOCOL.md §3).

Fast path: one pass over the columns that builds the Gram matrix of `[U; v; h]` in float64 (so `U v`
and `U h`, the split step's inner products, come with it) and U's column sums. Every product and every partial sum of a dot product between
rows i and j is an integer of magnitude at most `sqrt(G[i,i] G[j,j])` (Cauchy-Schwarz), and a
computed diagonal below 2**53 proves the true one is (sums of non-negative terms round monotonically),
so a computed diagonal below 2**53 proves every entry exact, whatever order BLAS (or cuBLAS) sums
in: the result is bit-identical on CPU and GPU. Otherwise an exact int64 computation is used
(needs `4 d M**2 < 2**63`, M = max |U|).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from threadpoolctl import ThreadpoolController

from market.errors import AggregationError

F64_EXACT = 2**53
I64_MAX = 2**63 - 1
_CHUNK = 1 << 17
#: Bytes of one float64 block of the CPU pass: it stays in a core's L2 cache while BLAS multiplies it
#: (`fedmarket bench aggregate` measures the pass against NumPy's one-shot `U @ U.T`).
CPU_BLOCK_BYTES = 2 << 20


@dataclass(frozen=True)
class GramPass:
    """The exact Gram matrix of `[U; v; h]` (int64, the rows of the public vectors given after U's: `[n + 1, n + 1]`
    with v alone, `[n, n]` with neither) and U's column sums (int64 `[d]`), from one pass over U."""

    gram: torch.Tensor
    col_sums: torch.Tensor
    n: int

    def distances(self) -> torch.Tensor:
        """`dist(i, j)` of the n updates (int64 [n, n])."""
        return gram_to_distances(self.gram[: self.n, : self.n])

    def sq_norms(self) -> list[int]:
        """`nsq(i) = <u_i, u_i>` as Python ints."""
        return [int(x) for x in self.gram.diagonal()[: self.n].tolist()]

    def inner(self, row: int = 0) -> list[int]:
        """`a_i = <v, u_i>` as Python ints, or with `row = 1` `<h, u_i>` (the pass must have had that vector)."""
        if self.gram.shape[0] <= self.n + row:
            raise AggregationError("this Gram pass had no " + ("v" if row == 0 else "h"))
        return [int(x) for x in self.gram[self.n + row, : self.n].tolist()]


def check_matrix(U: torch.Tensor) -> tuple[int, int, int]:
    """Validate an int64 [n, d] matrix; return (n, d, max |U|)."""
    n, d = _check_shape(U)
    if not U.numel():
        return n, d, 0
    lo, hi = torch.aminmax(U)
    return n, d, max(-int(lo), int(hi))


def _check_shape(U: torch.Tensor) -> tuple[int, int]:
    """(n, d) of an int64 [n, d] tensor; AggregationError otherwise."""
    if U.dtype != torch.int64 or U.dim() != 2:
        raise AggregationError(f"expected an int64 [n, d] tensor, got {U.dtype} {tuple(U.shape)}")
    return U.shape[0], U.shape[1]


def gram_is_exact(d: int, max_a: int, max_b: int) -> bool:
    """True when every partial sum of a d-long integer dot product is exact in float64."""
    return d * max_a * max_b <= F64_EXACT


def gram_pass(U: torch.Tensor, v: torch.Tensor | None = None, h: torch.Tensor | None = None) -> GramPass:
    """PROTOCOL §3's integers in one pass over U: the exact Gram matrix of `[U; v; h]` and U's column sums
    (`h`, the split step, only with `v`)."""
    n, d = _check_shape(U)
    if h is not None and v is None:
        raise AggregationError("a Gram pass takes h only after v")
    for name, x in (("v", v), ("h", h)):
        if x is not None and (x.dtype != torch.int64 or tuple(x.shape) != (d,)):
            raise AggregationError(f"{name} must be int64 of length {d}, got {x.dtype} {tuple(x.shape)}")
    extra = None if v is None else torch.stack([x.to(U.device) for x in (v, h) if x is not None])
    if U.device.type == "cpu" and n:
        g64, sums = _cpu_pass(U.numpy(), None if extra is None else extra.cpu().numpy())
        gram, col_sums = torch.from_numpy(g64), torch.from_numpy(sums.astype(np.int64))  # NumPy: no OpenMP wake-up
    else:
        gram, col_sums = _torch_pass(U, extra)
    if gram.numel() and float(gram.diagonal().max()) >= F64_EXACT:
        return GramPass(_int64_gram(U if extra is None else torch.cat([U, extra])), U.sum(dim=0), n)
    return GramPass(gram.to(torch.int64), col_sums.to(torch.int64), n)


def _cpu_pass(U: np.ndarray, extra: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Float64 Gram of `[U; extra]` (the public vectors' rows) and U's column sums over cache-sized column blocks,
    one worker thread per core (each with single-threaded BLAS), the blocks handed out one at a time so that a core
    busy with other work takes fewer of them: no float64 copy of U is ever made."""
    n, d = U.shape
    rows = n + (0 if extra is None else len(extra))
    chunk = cpu_chunk(rows)
    workers = max(1, min(len(os.sched_getaffinity(0)), d // chunk))
    grams = [np.zeros((rows, rows)) for _ in range(workers)]
    sums = np.empty(d)
    starts = iter(range(0, d, chunk))  # next() on a range iterator is atomic under the GIL

    def work(k: int) -> None:
        buf, prod = np.empty((rows, min(chunk, d))), np.empty((rows, rows))
        for s in starts:
            e = min(d, s + chunk)
            b = buf[:, : e - s]
            np.copyto(b[:n], U[:, s:e], casting="unsafe")
            if extra is not None:
                np.copyto(b[n:], extra[:, s:e], casting="unsafe")
            np.matmul(b, b.T, out=prod)
            grams[k] += prod
            np.sum(b[:n], axis=0, out=sums[s:e])

    if workers == 1:
        work(0)
    else:
        with _blas().limit(limits=1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
            list(pool.map(work, range(workers)))
    return sum(grams[1:], grams[0]), sums


@functools.cache
def _blas() -> ThreadpoolController:
    """The process's BLAS thread pools, inspected once (a scan of the loaded libraries takes milliseconds)."""
    return ThreadpoolController()


def cpu_chunk(rows: int) -> int:
    """Columns per block of the CPU pass: the largest power of two (at least 256) whose float64 block of
    `rows` rows fits CPU_BLOCK_BYTES."""
    return max(256, 1 << max(0, (CPU_BLOCK_BYTES // (8 * max(rows, 1))).bit_length() - 1))


def _torch_pass(U: torch.Tensor, extra: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The same pass in torch (CUDA, or an empty U): float64 Gram over column chunks, int64 column sums."""
    W = U if extra is None else torch.cat([U, extra])
    gram = torch.zeros((W.shape[0], W.shape[0]), dtype=torch.float64, device=U.device)
    for _, block in f64_blocks(W):
        gram += block @ block.T
    return gram, U.sum(dim=0)


def f64_blocks(U: torch.Tensor) -> Iterator[tuple[slice, torch.Tensor]]:
    """Column chunks of U converted to float64 (bounded memory)."""
    for c in range(0, U.shape[1], _CHUNK):
        cols = slice(c, c + _CHUNK)
        yield cols, U[:, cols].to(torch.float64)


def pairwise_sq_distances(U: torch.Tensor) -> torch.Tensor:
    """`dist(i, j) = sum_k (U[i,k] - U[j,k])**2` as an exact int64 [n, n] tensor (§3)."""
    return gram_pass(U).distances()


def gram_to_distances(g: torch.Tensor) -> torch.Tensor:
    """`dist(i, j) = g[i,i] + g[j,j] - 2 g[i,j]` (exact int64)."""
    sq = g.diagonal()
    return (sq[:, None] + sq[None, :] - 2 * g).fill_diagonal_(0)


def _int64_gram(W: torch.Tensor) -> torch.Tensor:
    """Exact int64 Gram matrix, row against all rows, column chunk by column chunk (CPU and CUDA alike).

    AggregationError when a distance could overflow int64 (`4 d M**2 >= 2**63`).
    """
    n, d, m = check_matrix(W)
    if 4 * d * m * m > I64_MAX:
        raise AggregationError(f"distances overflow int64 (d={d}, max|U|={m})")
    gram = torch.zeros((n, n), dtype=torch.int64, device=W.device)
    for c in range(0, d, _CHUNK):
        block = W[:, c : c + _CHUNK]
        for i in range(n):
            gram[i] += (block * block[i]).sum(dim=1)
    return gram
