"""Owner reports: exact and GTG accuracy Shapley, leave-one-out, on games with known values."""

from __future__ import annotations

import math

import pytest
import torch

from aggregator.eval.reports import accuracy_shapley, coalition_accuracy, exact_shapley, gtg_shapley, leave_one_out
from market.ml.tasks import flatten, get_task

WEIGHTS = [3.0, 1.0, 0.0, 2.0]


def additive(s: frozenset[int]) -> float:
    """An additive game: the Shapley value of i is WEIGHTS[i]."""
    return sum(WEIGHTS[i] for i in s)


def test_exact_shapley_on_additive_and_glove_games() -> None:
    r = exact_shapley(4, additive)
    assert [round(x, 9) for x in r.values] == WEIGHTS and r.evaluations == 16 and r.method == "exact"
    # Glove game: player 0 holds a left glove, 1 and 2 right gloves: values 2/3, 1/6, 1/6.
    glove = exact_shapley(3, lambda s: float(0 in s and bool(s & {1, 2})))
    assert [round(x, 9) for x in glove.values] == [round(2 / 3, 9), round(1 / 6, 9), round(1 / 6, 9)]


def test_gtg_shapley_approximates_and_truncates() -> None:
    r = gtg_shapley(4, additive, seed=0, max_perms=100, eps=1e-9)
    assert [round(x, 6) for x in r.values] == WEIGHTS and r.method == "gtg"
    flat = gtg_shapley(5, lambda s: 1.0, eps=1e-3)
    assert flat.values == [0.0] * 5 and flat.evaluations == 2  # U(all) == U(empty): nothing sampled
    assert accuracy_shapley(12, lambda s: float(len(s)), exact_max=10).method == "gtg"


def test_leave_one_out() -> None:
    r = leave_one_out(4, additive)
    assert r.values == WEIGHTS and r.evaluations == 5


def test_coalition_accuracy_utility() -> None:
    task = get_task("digits-softmax")
    g = flatten(task.model(0))
    u = coalition_accuracy(task.build_model, g, [torch.zeros(650), -g], task.val)
    base = u(frozenset())
    assert u(frozenset({0})) == base
    assert u(frozenset({0, 1})) == base  # g / 2: the same arg-max everywhere
    assert u(frozenset({1})) == float((task.val.y == 0).float().mean())  # all-zero model predicts class 0


def test_coalition_loss_utility() -> None:
    task = get_task("digits-softmax")
    g = flatten(task.model(0))
    u = coalition_accuracy(task.build_model, g, [torch.zeros(650), -g], task.val, "loss")
    assert abs(u(frozenset({1})) + math.log(10)) < 1e-5  # the all-zero model: uniform, loss ln 10
    assert u(frozenset({0})) == u(frozenset())
    with pytest.raises(ValueError, match="metric"):
        coalition_accuracy(task.build_model, g, [], task.val, "f1")
