"""A Flower NumPyClient for the digits tasks, trained with plain PyTorch: the kind of client a trainer already has.

From the repository root, with the data named twice (the market checks the trainer's data against the project's
schema before it stakes; the client trains on what FEDMARKET_FLOWER_DATA names):

    FEDMARKET_FLOWER_DATA=0/4 fedmarket trainer run PID --partition 0/4 --flower-client examples.flower_client:client
    FEDMARKET_FLOWER_DATA=mine.npz fedmarket trainer run PID --data mine.npz --flower-client examples.flower_client:client

FEDMARKET_FLOWER_DATA is a data file (.npz with x and y, .csv, an image folder) or I/N, share I of N of the built-in
digits training split (what --partition I/N trains on). The model comes from the project's task (config["task"]).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import torch
from flwr.client import NumPyClient
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from market.errors import ConfigError
from market.ml.tasks import Split, Task, dirichlet_partition, get_task
from market.ml.tasks.owndata import load_task_data

Config = dict[str, bool | bytes | float | int | str]


@functools.cache
def task(name: str) -> Task:
    """The project's built-in task by name (its model and data), loaded once."""
    return get_task(name)


class DigitsClient(NumPyClient):
    """Plain PyTorch SGD on one trainer's digits data."""

    def __init__(self, data: Split) -> None:
        """`data` is this trainer's private training data."""
        self.data = data

    def get_parameters(self, config: Config) -> list[np.ndarray]:
        """A fresh model's parameters, in its parameter order."""
        return [p.detach().numpy() for p in task(str(config.get("task", "digits-softmax"))).build_model().parameters()]

    def fit(self, parameters: list[np.ndarray], config: Config) -> tuple[list[np.ndarray], int, Config]:
        """Train from `parameters` for config's epochs with its learning rate and batch size; the new parameters."""
        model: nn.Module = task(str(config["task"])).build_model()
        with torch.no_grad():
            for p, value in zip(model.parameters(), parameters):
                p.copy_(torch.from_numpy(value))
        opt = torch.optim.SGD(model.parameters(), lr=float(config["lr"]))
        loader = DataLoader(TensorDataset(self.data.x, self.data.y), batch_size=int(config["batch_size"]), shuffle=True,
                            generator=torch.Generator().manual_seed(int(config["seed"])))
        loss = torch.zeros(())
        for _ in range(int(config["epochs"])):
            for x, y in loader:
                opt.zero_grad()
                loss = F.cross_entropy(model(x), y)
                loss.backward()
                opt.step()
        return [p.detach().numpy() for p in model.parameters()], len(self.data), {"loss": float(loss.detach())}


def client() -> DigitsClient:
    """The client over the data FEDMARKET_FLOWER_DATA names (a file, or I/N of the built-in digits)."""
    spec = os.environ.get("FEDMARKET_FLOWER_DATA", "")
    digits = task("digits-softmax")  # both digits tasks share the data
    if spec and Path(spec).exists():
        return DigitsClient(load_task_data(digits, Path(spec)))
    try:
        i, n = (int(part) for part in spec.split("/"))
    except ValueError:
        raise ConfigError(f"FEDMARKET_FLOWER_DATA must name a data file or a share I/N of the digits, got {spec!r}") from None
    if not 0 <= i < n:
        raise ConfigError(f"FEDMARKET_FLOWER_DATA={spec}: I must be in 0..N-1")
    return DigitsClient(digits.train.subset(dirichlet_partition(digits.train.y.numpy(), n, 0.5, 0)[i]))
