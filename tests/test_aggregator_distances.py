"""Exact pairwise distances: the float64 Gram path, the int64 fallback and their bounds."""

from __future__ import annotations

import pytest
import torch

from aggregator.rules.distances import F64_EXACT, cpu_chunk, gram_is_exact, gram_pass, pairwise_sq_distances
from market.errors import AggregationError


def test_hand_computed() -> None:
    U = torch.tensor([[1, 2, 3], [0, 0, 0], [-1, 2, 5]], dtype=torch.int64)
    assert pairwise_sq_distances(U).tolist() == [[0, 14, 8], [14, 0, 30], [8, 30, 0]]


def test_gram_bound() -> None:
    assert gram_is_exact(2**23, 2**15, 2**15)
    assert not gram_is_exact(2**23 + 1, 2**15, 2**15)
    assert F64_EXACT == 2**53


def test_fallback_beyond_float64_is_exact() -> None:
    # d * M**2 = 4 * (2**26)**2 = 2**54 > 2**53: the int64 path must be used and stay exact.
    M = 2**26
    U = torch.tensor([[M, M - 1, -M, 3], [M - 3, -M, M, 1]], dtype=torch.int64)
    expected = sum((a - b) ** 2 for a, b in zip(U[0].tolist(), U[1].tolist()))
    D = pairwise_sq_distances(U)
    assert D.tolist() == [[0, expected], [expected, 0]]


def test_overflow_and_bad_input_raise() -> None:
    with pytest.raises(AggregationError):
        pairwise_sq_distances(torch.tensor([[2**31], [-(2**31)]], dtype=torch.int64))
    with pytest.raises(AggregationError):
        pairwise_sq_distances(torch.zeros((2, 3), dtype=torch.int32))


def test_chunked_gram_matches_int64_on_long_vectors() -> None:
    gen = torch.Generator().manual_seed(1)
    U = torch.randint(-32767, 32768, (4, 300_000), generator=gen, dtype=torch.int64)
    D = pairwise_sq_distances(U)
    for i in range(4):
        for j in range(4):
            diff = U[i] - U[j]
            assert int(D[i, j]) == int((diff * diff).sum())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu() -> None:
    gen = torch.Generator().manual_seed(2)
    U = torch.randint(-32767, 32768, (9, 50_000), generator=gen, dtype=torch.int64)
    assert torch.equal(pairwise_sq_distances(U.cuda()).cpu(), pairwise_sq_distances(U))


def test_gram_pass_hand_computed() -> None:
    U = torch.tensor([[1, 2, 3], [0, 0, 0], [-1, 2, 5]], dtype=torch.int64)
    gp = gram_pass(U, torch.tensor([1, -1, 2], dtype=torch.int64))
    assert gp.gram.tolist() == [[14, 0, 18, 5], [0, 0, 0, 0], [18, 0, 30, 7], [5, 0, 7, 6]]
    assert gp.col_sums.tolist() == [0, 4, 8] and gp.sq_norms() == [14, 0, 30] and gp.inner() == [5, 0, 7]
    with pytest.raises(AggregationError, match="no v"):
        gram_pass(U).inner()
    # with the split step h = (0, 1, 1) after v: its row and column follow v's, <h, u_i> = (5, 0, 7)
    gh = gram_pass(U, torch.tensor([1, -1, 2], dtype=torch.int64), torch.tensor([0, 1, 1], dtype=torch.int64))
    assert gh.gram[:4, :4].tolist() == gp.gram.tolist() and gh.gram[4].tolist() == [5, 0, 7, 1, 2]
    assert gh.inner() == [5, 0, 7] and gh.inner(1) == [5, 0, 7]
    with pytest.raises(AggregationError, match="no h"):
        gp.inner(1)
    with pytest.raises(AggregationError, match="h only after v"):
        gram_pass(U, None, torch.tensor([0, 1, 1], dtype=torch.int64))


def test_gram_pass_threads_blocks_and_views_are_exact() -> None:
    # several CPU blocks per worker and a ragged last block; a column view of a wider matrix (strided)
    gen, c = torch.Generator().manual_seed(3), cpu_chunk(8)
    assert c == 32768  # 8 rows of float64 in 2 MiB
    wide = torch.randint(-32767, 32768, (7, 3 * c + 1000), generator=gen, dtype=torch.int64)
    U, v = wide[:, 5 : 2 * c + 700 + 5], torch.randint(-32767, 32768, (2 * c + 700,), generator=gen)
    gp = gram_pass(U, v)
    W = torch.cat([U, v[None, :]])
    assert torch.equal(gp.gram, W @ W.T) and torch.equal(gp.col_sums, U.sum(dim=0))


def test_gram_pass_falls_back_when_the_diagonal_reaches_2_53() -> None:
    # |v|**2 = 2**54: the float64 diagonal proves nothing, the int64 path gives the exact values
    U = torch.tensor([[3, -1], [2**25, 5]], dtype=torch.int64)
    v = torch.tensor([2**26, 2**26 + 1], dtype=torch.int64)
    gp = gram_pass(U, v)
    assert gp.inner() == [3 * 2**26 - 2**26 - 1, 2**51 + 5 * (2**26 + 1)]
    assert gp.gram[2, 2].item() == 2**52 + (2**26 + 1) ** 2
