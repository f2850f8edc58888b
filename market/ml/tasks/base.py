"""A task: a model factory, data splits and a metric, identified by name and a stable hash."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from market.ml.tasks.params import layout, proof_view
from market.protocol.manifest import DataSchema


@dataclass(frozen=True)
class Split:
    """Features (float32) and integer class labels."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def subset(self, idx: np.ndarray) -> Split:
        """The rows `idx`."""
        i = torch.as_tensor(idx, dtype=torch.long)
        return Split(self.x[i], self.y[i])


@dataclass(frozen=True)
class Task:
    """Model factory + train/validation/test data + accuracy metric; `view_prefix` names the proof view, `schema`
    an own-data task's data schema and preprocessing (None for the built-in tasks)."""

    name: str
    build_model: Callable[[], nn.Module]
    train: Split
    val: Split
    test: Split
    num_classes: int
    view_prefix: str | None = None
    definition: dict[str, Any] = field(default_factory=dict)
    schema: DataSchema | None = None

    def model(self, seed: int = 0) -> nn.Module:
        """A freshly initialised model (deterministic for a given seed; the global RNG is left alone)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.build_model()

    @property
    def features(self) -> int:
        """Input features per row (the validation split's width)."""
        return int(self.val.x.reshape(self.val.x.shape[0], -1).shape[1])

    def view(self) -> tuple[int, int]:
        """The proof view (offset, length) in the flat parameter vector."""
        return proof_view(self.build_model(), self.view_prefix)

    def spec_hash(self) -> str:
        """Hex SHA-256 of the task definition and the model's parameter layout (the project's specHash)."""
        model = self.build_model()
        spec = {
            "task": self.name,
            "definition": self.definition,
            "params": [[s.name, list(s.shape)] for s in layout(model)],
            "view": list(proof_view(model, self.view_prefix)),
            "num_classes": self.num_classes,
        }
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def data_digest(*arrays: np.ndarray) -> str:
    """Hex SHA-256 of arrays' dtypes, shapes and bytes."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of correct arg-max predictions."""
    return float((logits.argmax(dim=1) == y).float().mean()) if len(y) else 0.0


def make_task(
    name: str,
    build_model: Callable[[], nn.Module],
    x: np.ndarray,
    y: np.ndarray,
    split_idx: tuple[np.ndarray, np.ndarray, np.ndarray],
    view_prefix: str | None,
    definition: dict[str, Any],
) -> Task:
    """Assemble a Task from arrays and (train, val, test) index arrays."""
    full = Split(torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long))
    tr, va, te = split_idx
    classes = int(y.max()) + 1 if len(y) else 0
    defn = {**definition, "data": data_digest(x, y)}
    return Task(name, build_model, full.subset(tr), full.subset(va), full.subset(te), classes, view_prefix, defn)
