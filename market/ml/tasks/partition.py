"""Data splits for simulations: held-out validation/test splits and Dirichlet non-IID partitions."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split


def holdout_split(
    y: np.ndarray, val_frac: float, test_frac: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified (train, validation, test) index arrays."""
    idx = np.arange(len(y))
    rest, test = train_test_split(idx, test_size=test_frac, random_state=seed, stratify=y)
    val_share = val_frac / (1.0 - test_frac)
    train, val = train_test_split(rest, test_size=val_share, random_state=seed, stratify=y[rest])
    return np.sort(train), np.sort(val), np.sort(test)


def dirichlet_partition(
    y: np.ndarray, n_clients: int, alpha: float, seed: int, min_size: int = 10
) -> list[np.ndarray]:
    """Per class, split samples over clients with Dirichlet(alpha) shares; redraw until all >= min_size."""
    if n_clients * min_size > len(y):
        raise ValueError(f"{len(y)} samples cannot give {n_clients} clients {min_size} each")
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    for _ in range(1000):
        parts: list[list[int]] = [[] for _ in range(n_clients)]
        for c in classes:
            members = rng.permutation(np.flatnonzero(y == c))
            shares = rng.dirichlet(np.full(n_clients, alpha))
            cuts = (np.cumsum(shares)[:-1] * len(members)).astype(int)
            for client, chunk in enumerate(np.split(members, cuts)):
                parts[client].extend(chunk.tolist())
        if min(len(p) for p in parts) >= min_size:
            return [np.sort(np.array(p, dtype=np.int64)) for p in parts]
    raise ValueError(f"no Dirichlet({alpha}) partition with {min_size} samples per client")
