"""Exact pairwise distances: the float64 Gram path, the int64 fallback and their bounds."""

from __future__ import annotations

import pytest
import torch

from aggregator.rules.distances import F64_EXACT, gram_is_exact, pairwise_sq_distances
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
