"""Learning tasks: model factory + data + metric, referenced by name and spec hash."""

from __future__ import annotations

from market.ml.tasks.base import Split, Task, accuracy
from market.ml.tasks.digits import digits_task
from market.ml.tasks.owndata import task_from_files
from market.ml.tasks.params import flatten, layout, num_params, proof_view, unflatten_into
from market.ml.tasks.partition import dirichlet_partition, holdout_split

BUILTIN = {"digits-softmax": lambda: digits_task("softmax"), "digits-mlp": lambda: digits_task("mlp")}


def get_task(name: str) -> Task:
    """A built-in task by name."""
    if name not in BUILTIN:
        raise KeyError(f"unknown task {name!r}; built-in: {sorted(BUILTIN)}")
    return BUILTIN[name]()


__all__ = [
    "BUILTIN", "Split", "Task", "accuracy", "digits_task", "dirichlet_partition", "flatten", "get_task",
    "holdout_split", "layout", "num_params", "proof_view", "task_from_files", "unflatten_into",
]
