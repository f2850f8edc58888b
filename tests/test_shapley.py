"""First-order Shapley (PROTOCOL §3) and inner products on hand-computed vectors."""

from __future__ import annotations

import pytest
import torch

from aggregator.eval.reports import exact_shapley
from aggregator.rules.shapley import first_order_shapley, harmonic_parts, inner_products
from market.errors import AggregationError


def test_inner_products_by_hand() -> None:
    U = torch.tensor([[1, 2], [3, -1]], dtype=torch.int64)
    assert inner_products(U, torch.tensor([2, 5], dtype=torch.int64)) == [12, 1]


def test_inner_products_beyond_float64_bound() -> None:
    U = torch.tensor([[2**30, 2**30, 1]], dtype=torch.int64)
    v = torch.tensor([2**25, 2**25, 7], dtype=torch.int64)
    assert inner_products(U, v) == [2**56 + 7]


def test_harmonic_parts() -> None:
    assert harmonic_parts(1) == (1, 0)
    assert harmonic_parts(3) == (6, 5)  # H_3 - 1 = 1/2 + 1/3 = 5/6
    assert harmonic_parts(4) == (12, 13)  # 6/12 + 4/12 + 3/12


def test_two_trainers_by_hand() -> None:
    # phi_0 = 10/2 + (10 - 4)/4 = 6.5, phi_1 = 4/2 + (4 - 10)/4 = 0.5: floored.
    assert first_order_shapley([10, 4], [True, True]) == [6, 0]


def test_three_trainers_floor_towards_minus_infinity() -> None:
    # Q = 6, P = 5, S = 3, D = 36: N = 147, -15, -96 -> 4, -1, -3.
    assert first_order_shapley([6, 0, -3], [True, True, True]) == [4, -1, -3]


def test_rejected_get_zero_and_single_gets_a() -> None:
    # Over {6, -3}: 6/2 + 9/4 = 5.25 and -3/2 - 9/4 = -3.75.
    assert first_order_shapley([6, 100, -3], [True, False, True]) == [5, 0, -4]
    assert first_order_shapley([5, -7], [False, True]) == [0, -7]
    assert first_order_shapley([5, -7], [False, False]) == [0, 0]


def test_matches_enumerated_shapley_and_is_efficient() -> None:
    a = [120, -40, 75, 9, 310, 0]
    scores = first_order_shapley(a, [True] * len(a))
    brute = exact_shapley(len(a), lambda s: sum(a[j] for j in s) / len(s) if s else 0.0).values
    assert all(abs(s - b) < 1 for s, b in zip(scores, brute))
    assert abs(sum(brute) - sum(a) / len(a)) < 1e-9


def test_errors() -> None:
    with pytest.raises(AggregationError):
        first_order_shapley([1, 2], [True])
    with pytest.raises(AggregationError):
        first_order_shapley([2**70, 0], [True, False])
