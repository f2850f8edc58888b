"""Built-in tasks on scikit-learn's digits (1,797 8x8 images; shipped, no download)."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits
from torch import nn

from market.ml.tasks.base import Task, make_task
from market.ml.tasks.partition import holdout_split

VAL_FRAC, TEST_FRAC, SPLIT_SEED = 0.15, 0.2, 0


def softmax_regression() -> nn.Module:
    """Linear 64 -> 10 (650 parameters)."""
    return nn.Sequential(nn.Linear(64, 10))


def small_mlp() -> nn.Module:
    """64 -> 32 -> ReLU -> 10 (2,410 parameters); its classifier head is `2.*`."""
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """Features scaled to [0, 1] (float32) and labels (int64)."""
    data = load_digits()
    return (data.data / 16.0).astype(np.float32), data.target.astype(np.int64)


def digits_task(model: str = "softmax") -> Task:
    """`digits-softmax` (whole model is the proof view) or `digits-mlp` (the head is)."""
    builders = {"softmax": (softmax_regression, None), "mlp": (small_mlp, "2.")}
    if model not in builders:
        raise ValueError(f"unknown digits model {model!r}")
    build, prefix = builders[model]
    x, y = digits_arrays()
    split = holdout_split(y, VAL_FRAC, TEST_FRAC, SPLIT_SEED)
    definition = {"source": "sklearn.datasets.load_digits", "model": model, "split": [VAL_FRAC, TEST_FRAC, SPLIT_SEED]}
    return make_task(f"digits-{model}", build, x, y, split, prefix, definition)
