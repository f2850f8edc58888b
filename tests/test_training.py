"""Local training: deterministic updates that lower the loss; evaluation and loss gradient."""

from __future__ import annotations

import torch

from market.ml.tasks import flatten, get_task
from market.ml.training import evaluate, local_update, loss_gradient
from market.protocol.manifest import HyperParams


def test_local_update_is_deterministic_and_helps() -> None:
    task = get_task("digits-softmax")
    g = flatten(task.model(0))
    hp = HyperParams(epochs=2, batch_size=16, lr=0.5, seed=7)
    data = task.train.subset(torch.arange(200).numpy())
    u1 = local_update(task.build_model, g, data, hp, torch.device("cpu"))
    u2 = local_update(task.build_model, g, data, hp, torch.device("cpu"))
    assert u1.dtype == torch.float32 and u1.shape == (650,) and torch.equal(u1, u2)
    assert not torch.equal(u1, local_update(task.build_model, g, data, HyperParams(2, 16, 0.5, 8), torch.device("cpu")))
    before, after = evaluate(task.build_model, g, task.val), evaluate(task.build_model, g + u1, task.val)
    assert after[0] < before[0] and after[1] > before[1] + 0.3


def test_loss_gradient_matches_finite_difference() -> None:
    task = get_task("digits-softmax")
    g = flatten(task.model(1)).to(torch.float64).to(torch.float32)
    grad = loss_gradient(task.build_model, g, task.val)
    eps = 1e-2
    e = torch.zeros_like(g)
    e[640] = eps  # the first bias
    numeric = (evaluate(task.build_model, g + e, task.val)[0] - evaluate(task.build_model, g - e, task.val)[0]) / (2 * eps)
    assert abs(numeric - float(grad[640])) < 1e-3
