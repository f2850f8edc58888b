"""Owners' own data (.npz, CSV, image folders) and models (a Python file defining `build_model`)."""

from __future__ import annotations

import hashlib
import types
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np
from torch import nn

from market.errors import ConfigError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif"}


def load_npz(path: Path, x_key: str = "x", y_key: str = "y") -> tuple[np.ndarray, np.ndarray]:
    """Features and labels from an .npz archive (no pickled objects allowed)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if x_key not in data or y_key not in data:
                raise ConfigError(f"{path}: needs arrays {x_key!r} and {y_key!r}, has {sorted(data.files)}")
            x, y = data[x_key], data[y_key]
    except (OSError, ValueError, zipfile.BadZipFile) as exc:  # not a zip, a truncated one, or pickled objects
        raise ConfigError(f"{path}: not a numpy .npz archive of numeric arrays ({exc})") from None
    if x.ndim == 0 or y.ndim != 1 or len(x) != len(y):
        raise ConfigError(f"{path}: {x_key!r} {x.shape} and {y_key!r} {y.shape} must have one row per label")
    try:
        features = x.reshape(len(x), -1).astype(np.float32)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: {x_key!r} is not numeric ({exc})") from None
    return _finite(features, path, "NaN or infinite"), _labels(y, path)


def load_csv(path: Path, label_column: str = "label") -> tuple[np.ndarray, np.ndarray]:
    """Numeric CSV with a header row; `label_column` holds integer class labels."""
    # A structured array: numpy's stubs cannot type field access by name, hence Any.
    try:
        table: Any = np.atleast_1d(np.genfromtxt(path, delimiter=",", names=True, dtype=np.float64))
    except (ValueError, IndexError) as exc:  # an empty file, another delimiter, ragged rows
        raise ConfigError(f"{path}: not a comma-separated table with a header row ({exc or 'empty'})") from None
    names = list(table.dtype.names or ())
    if label_column not in names:
        raise ConfigError(f"{path}: no column {label_column!r} (columns: {names})")
    features = [n for n in names if n != label_column]
    x = np.stack([table[n] for n in features], axis=1).astype(np.float32)
    return _finite(x, path, "non-numeric or missing"), _labels(table[label_column], path)


def _finite(x: np.ndarray, path: Path, what: str) -> np.ndarray:
    """`x`, or ConfigError naming how many feature values are not finite and the first row holding one: such a
    value would make every update the trainer trains NaN, after it has staked."""
    bad = ~np.isfinite(x)
    if bad.any():
        raise ConfigError(f"{path}: {int(bad.sum())} {what} feature values (the first in row "
                          f"{int(np.flatnonzero(bad.any(axis=1))[0])}); clean or impute them first")
    return x


def load_image_folder(root: Path, size: tuple[int, int] = (28, 28)) -> tuple[np.ndarray, np.ndarray]:
    """`root/<class>/<image>`: greyscale images resized to `size`, scaled to [0, 1]; classes sorted by name."""
    from PIL import Image

    classes = sorted(p.name for p in Path(root).iterdir() if p.is_dir())
    xs, ys = [], []
    for label, name in enumerate(classes):
        for f in sorted((Path(root) / name).iterdir()):
            if f.suffix.lower() in IMAGE_SUFFIXES:
                try:
                    with Image.open(f) as img:
                        xs.append(np.asarray(img.convert("L").resize(size), dtype=np.float32).reshape(-1) / 255.0)
                except (OSError, ValueError) as exc:  # PIL's UnidentifiedImageError is an OSError; a truncated file too
                    raise ConfigError(f"{f}: not a readable image ({exc})") from None
                ys.append(label)
    if not xs:
        raise ConfigError(f"{root}: no images found in class sub-folders")
    return np.stack(xs), np.array(ys, dtype=np.int64)


def _labels(y: np.ndarray, path: Path) -> np.ndarray:
    """Labels must be non-negative integers."""
    if y.size and (np.any(y < 0) or np.any(y != np.round(y))):
        raise ConfigError(f"{path}: labels must be non-negative integers")
    return y.astype(np.int64)


def model_factory_from_source(source: bytes, origin: str, name: str = "build_model") -> Callable[[], nn.Module]:
    """Run a model file's Python source and return its `name`. It runs as code: load only files you trust."""
    module = types.ModuleType(f"fedmarket_user_model_{hashlib.sha256(source).hexdigest()[:16]}")
    module.__file__ = origin
    try:  # the owner's model file is Python code by design (README, "Own data")
        exec(compile(source, origin, "exec"), module.__dict__)
    except SyntaxError as exc:
        raise ConfigError(f"{origin}: not a Python file ({exc})") from None
    except Exception as exc:  # e.g. an import this machine lacks: the file's fault, named, not a traceback
        raise ConfigError(f"{origin}: running the model file failed: {type(exc).__name__}: {exc}") from None
    factory = getattr(module, name, None)
    if not callable(factory):
        raise ConfigError(f"{origin}: defines no callable {name!r}")
    return cast(Callable[[], nn.Module], factory)


def load_model_factory(path: Path, name: str = "build_model") -> Callable[[], nn.Module]:
    """Import `name` from a Python file. The file runs as code: load only files you trust."""
    try:
        source = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the model file {path}: {exc}") from None
    return model_factory_from_source(source, str(path), name)


def feature_names(path: Path, label_column: str, count: int) -> list[str]:
    """The feature columns' names: a CSV's header without the label column, else x0, x1, ..."""
    path = Path(path)
    if path.suffix == ".csv" and path.is_file():
        with path.open() as fh:
            header = [h.strip().strip('"') for h in fh.readline().split(",")]
        names = [h for h in header if h != label_column]
        if len(names) == count:
            return names
    return [f"x{i}" for i in range(count)]


def load_data(path: Path, label_column: str = "label") -> tuple[np.ndarray, np.ndarray]:
    """Dispatch on the path: directory = image folder, .npz, .csv."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: no such file or folder")
    if path.is_dir():
        return load_image_folder(path)
    if path.suffix == ".npz":
        return load_npz(path)
    if path.suffix == ".csv":
        return load_csv(path, label_column)
    raise ConfigError(f"{path}: unsupported data format (use .npz, .csv or an image folder)")
