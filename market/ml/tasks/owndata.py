"""Owners' own data as a task that every party rebuilds alike: the data schema, its preprocessing, the
validation split the owner publishes, and the checks a trainer's data must pass before it stakes.

The owner's file is split (stratified) into train, validation and test; the validation split is
published (raw, as `encode_split` bytes) together with the model file, and "standardize" uses that
split's per-feature mean and std, which the manifest carries. The task's definition (hence its spec
hash) is the model file's digest, the validation split's digest and the schema, so the owner, the
aggregator and the trainers derive the same spec hash from what is published.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save
from torch import nn

from market.errors import ConfigError, DataMismatch
from market.ml.tasks.base import Split, Task, data_digest
from market.ml.tasks.loaders import feature_names, load_data, model_factory_from_source
from market.ml.tasks.partition import holdout_split
from market.protocol.manifest import DataSchema

#: A warning names the columns when, without preprocessing, feature scales (stds) differ by more than this factor.
SCALE_SPREAD = 100.0


def fit_standardize(x: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-feature mean and std of `x` as float32 values (a constant feature gets std 1, so it maps to 0)."""
    xd = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    mean = xd.mean(axis=0).astype(np.float32)
    std = xd.std(axis=0).astype(np.float32)
    std[~(std > 0)] = 1.0
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


def make_schema(x_val: np.ndarray, classes: int, label_column: str = "label", preprocess: str = "standardize") -> DataSchema:
    """The schema of data shaped like `x_val`, standardised with `x_val`'s statistics when asked."""
    features = int(np.asarray(x_val).reshape(len(x_val), -1).shape[1])
    if preprocess != "standardize":
        return DataSchema(features, classes, label_column, preprocess)
    mean, std = fit_standardize(x_val)
    return DataSchema(features, classes, label_column, preprocess, mean, std)


def preprocess(x: np.ndarray, schema: DataSchema) -> np.ndarray:
    """The features as every party feeds them to the model (float32): (x - mean) / std, or unchanged for "none"."""
    xf = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
    if schema.preprocess == "none":
        return xf
    return (xf - np.asarray(schema.mean, dtype=np.float32)) / np.asarray(schema.std, dtype=np.float32)


def scale_warning(x: np.ndarray, names: list[str], schema: DataSchema) -> str | None:
    """With preprocess "none", a warning naming the columns whose std exceeds SCALE_SPREAD x the smallest
    (constant columns aside); None when scales are alike or the data is standardised."""
    if schema.preprocess != "none" or not len(x):
        return None
    std = np.asarray(x, dtype=np.float64).reshape(len(x), -1).std(axis=0)
    varying = np.flatnonzero(std > 0)
    if len(varying) < 2:
        return None
    small = varying[np.argmin(std[varying])]
    big = [int(j) for j in varying if std[j] > SCALE_SPREAD * std[small]]
    if not big:
        return None
    listed = ", ".join(f"{names[j]} (std {std[j]:.4g})" for j in big)
    return (f"feature scales differ by {std[varying].max() / std[small]:,.0f}x with preprocess = \"none\": {listed} "
            f"against {names[small]} (std {std[small]:.4g}); large features will dominate the updates and the "
            "quantization scale. Declare preprocess = \"standardize\" in [project] unless the model scales them itself.")


def check_fits(x: np.ndarray, y: np.ndarray, features: int, classes: int, source: str) -> None:
    """DataMismatch naming `source` unless the rows have `features` features and labels in 0..classes-1."""
    got = int(np.asarray(x).reshape(len(x), -1).shape[1]) if len(x) else features
    if got != features:
        raise DataMismatch(f"{source}: {got} features per row, but the project's schema has {features}; "
                           "use data with the project's columns (the label column apart)")
    labels = np.unique(np.asarray(y))
    outside = [int(v) for v in labels if not 0 <= v < classes]
    if outside:
        raise DataMismatch(f"{source}: labels {outside[:10]} are outside the project's {classes} classes "
                           f"(0..{classes - 1})")
    if not len(y):
        raise DataMismatch(f"{source}: no rows")


def fit_data(x: np.ndarray, y: np.ndarray, schema: DataSchema, source: str) -> Split:
    """A trainer's rows checked against the schema and preprocessed as the manifest says."""
    check_fits(x, y, schema.features, schema.classes, source)
    return Split(torch.as_tensor(preprocess(x, schema)), torch.as_tensor(np.asarray(y), dtype=torch.long))


def encode_split(x: np.ndarray, y: np.ndarray) -> bytes:
    """Raw features (float32) and labels (int64) as safetensors bytes: deterministic, so its CID is too."""
    return bytes(st_save({"x": np.ascontiguousarray(x, dtype=np.float32).reshape(len(x), -1),
                          "y": np.ascontiguousarray(y, dtype=np.int64)}))


def decode_split(raw: bytes) -> tuple[np.ndarray, np.ndarray]:
    """`encode_split`'s arrays back; ConfigError if they are not a split."""
    try:
        arrays = st_load(raw)
    except (SafetensorError, ValueError) as exc:
        raise ConfigError(f"the published validation split is not a safetensors file: {exc}") from None
    x, y = arrays.get("x"), arrays.get("y")
    if x is None or y is None or x.ndim != 2 or y.shape != (len(x),) or x.dtype != np.float32 or y.dtype != np.int64:
        raise ConfigError("the published validation split needs x (float32, rows x features) and y (int64, one per row)")
    return x, y


def own_task(
    name: str, model_source: bytes, schema: DataSchema, val: tuple[np.ndarray, np.ndarray],
    view_prefix: str | None = None, train: tuple[np.ndarray, np.ndarray] | None = None,
    test: tuple[np.ndarray, np.ndarray] | None = None, origin: str = "model file",
) -> Task:
    """The task over a model file's source and raw (unpreprocessed) splits; what others lack stays empty (train and
    test are the owner's). ConfigError when the model does not map `schema.features` inputs to `schema.classes` outputs."""
    build = model_factory_from_source(model_source, origin)
    _check_model(build, schema, origin)
    definition = {"model_file": hashlib.sha256(model_source).hexdigest(), "val": data_digest(*val), "schema": asdict(schema)}
    return Task(name, build, _split(train, schema, f"{name}: training split"), fit_data(*val, schema, f"{name}: validation split"),
                _split(test, schema, f"{name}: test split"), schema.classes, view_prefix, definition, schema)


def _split(part: tuple[np.ndarray, np.ndarray] | None, schema: DataSchema, source: str) -> Split:
    """`fit_data` of a split the caller may not have (then empty)."""
    if part is None:
        return Split(torch.zeros(0, schema.features), torch.zeros(0, dtype=torch.long))
    return fit_data(*part, schema, source)


def _check_model(build: Callable[[], nn.Module], schema: DataSchema, origin: str) -> None:
    """ConfigError unless build_model() maps a batch of `features` inputs to `classes` logits."""
    try:
        model = build()
    except Exception as exc:  # the owner's code: whatever it raises is its fault, named, not a traceback
        raise ConfigError(f"{origin}: build_model() failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(model, nn.Module):
        raise ConfigError(f"{origin}: build_model() returned a {type(model).__name__}, not a torch nn.Module")
    try:
        with torch.no_grad():
            out = model.eval()(torch.zeros(2, schema.features))
    except Exception as exc:  # the owner's forward pass, as above
        raise ConfigError(f"{origin}: build_model() does not take {schema.features} features: {exc}") from None
    if not isinstance(out, torch.Tensor):
        raise ConfigError(f"{origin}: build_model()'s forward returns a {type(out).__name__}, not a tensor of logits")
    if tuple(out.shape) != (2, schema.classes):
        raise ConfigError(f"{origin}: build_model() gives outputs of shape {tuple(out.shape[1:])} per row, the data has "
                          f"{schema.classes} classes")


@dataclass(frozen=True)
class OwnerData:
    """The owner's task and what it publishes: the model file's source and the raw validation split; `x` is every
    row's raw features and `names` the feature columns' names (for the scale warning)."""

    task: Task
    model_source: bytes
    val: tuple[np.ndarray, np.ndarray]
    x: np.ndarray
    names: list[str]


def owner_data(
    name: str, data_path: Path, model_path: Path, view_prefix: str | None = None,
    val_frac: float = 0.15, test_frac: float = 0.2, seed: int = 0,
    label_column: str = "label", preprocess: str = "standardize",
) -> OwnerData:
    """The owner's data file and model file as a task (stratified train/validation/test splits) and its publications."""
    x, y = load_data(Path(data_path), label_column)
    try:
        source = Path(model_path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the model file {model_path}: {exc}") from None
    tr, va, te = holdout_split(y, val_frac, test_frac, seed)
    schema = make_schema(x[va], int(y.max()) + 1 if len(y) else 0, label_column, preprocess)
    task = own_task(name, source, schema, (x[va], y[va]), view_prefix, (x[tr], y[tr]), (x[te], y[te]), str(model_path))
    return OwnerData(task, source, (x[va], y[va]), x, feature_names(Path(data_path), label_column, schema.features))


def task_from_files(
    name: str, data_path: Path, model_path: Path, view_prefix: str | None = None,
    val_frac: float = 0.15, test_frac: float = 0.2, seed: int = 0,
    label_column: str = "label", preprocess: str = "standardize",
) -> Task:
    """The owner's task over a data file (.csv with `label_column`, .npz, image folder) and a model file, its
    features preprocessed as `preprocess` says ("standardize" with the validation split's statistics, or "none")."""
    return owner_data(name, data_path, model_path, view_prefix, val_frac, test_frac, seed, label_column, preprocess).task


def load_task_data(task: Task, path: Path) -> Split:
    """A trainer's data file for `task`: checked against its schema (DataMismatch before anything is staked or sent)
    and preprocessed as its manifest says; a built-in task's data is checked and used as it is."""
    if task.schema is not None:
        x, y = load_data(Path(path), task.schema.label_column)
        return fit_data(x, y, task.schema, str(path))
    x, y = load_data(Path(path))
    check_fits(x, y, task.features, task.num_classes, str(path))
    return Split(torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long))
