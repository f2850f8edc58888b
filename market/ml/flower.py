"""Flower clients as trainers: a `NumPyClient`'s `fit` becomes the trainer's local training step.

Each round the client is given the global model as NumPy arrays in the model's parameter order and the project's
hyper-parameters in its config; the parameters it returns, minus the global model, are the update, which then takes
the trainer's normal path (quantize, clip-rate check, upload, commit). flwr cannot be pinned beside this project's
dependencies (every release caps typer, click, packaging, pathspec or numpy below their pins), so, as the Flower
baseline of `fedmarket bench aggregate` does, it is installed on first use into FEDMARKET_HOME/flwr, outside the venv.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import os
import random
import subprocess
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import nn

from market.errors import ConfigError
from market.ml.tasks.base import Split
from market.ml.tasks.params import ParamSlot, unflatten_into
from market.ml.training import local_update
from market.paths import STATE
from market.protocol.manifest import HyperParams, Manifest

#: The Flower release installed when flwr does not import (the same as the aggregation bench's baseline).
FLWR = "flwr==1.42.0"

#: A Flower config value.
Scalar = bool | bytes | float | int | str


def import_flwr(module: str) -> ModuleType:
    """A flwr module, installing FLWR into FEDMARKET_HOME/flwr first when flwr is not importable (see the docstring)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        target = STATE / "flwr"
        if not (target / "flwr").exists():
            print(f"installing {FLWR} into {target} (Flower: its pins conflict with ours)", file=sys.stderr)
            subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--target", str(target), FLWR], check=True)
        if str(target) not in sys.path:
            sys.path.append(str(target))
        return importlib.import_module(module)


NumPyClient: type = import_flwr("flwr.client").NumPyClient


def load_client(spec: str) -> Any:
    """The NumPyClient named by `spec` (module:attr, the attribute a client or a zero-argument factory of one);
    the working directory is importable, as with `python -m`, so a client beside the trainer's files loads."""
    module_name, sep, attr = spec.partition(":")
    if not (sep and module_name and attr):
        raise ConfigError(f"--flower-client takes module:attr, got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # the trainer's own module: a missing import, a syntax error, whatever it raises
        raise ConfigError(f"--flower-client {spec}: module {module_name!r} does not import "
                          f"({type(exc).__name__}: {exc})") from None
    try:
        obj = getattr(module, attr)
    except AttributeError:
        raise ConfigError(f"--flower-client {spec}: module {module_name!r} has no attribute {attr!r}") from None
    if not isinstance(obj, NumPyClient) and callable(obj):
        if _takes_arguments(obj):
            raise ConfigError(f"--flower-client {spec}: {attr!r} cannot be called without arguments (name a NumPyClient "
                              "instance or a zero-argument factory returning one)")
        try:
            obj = obj()
        except Exception as exc:  # the trainer's own factory, as above
            raise ConfigError(f"--flower-client {spec}: {attr}() failed ({type(exc).__name__}: {exc})") from None
    if not isinstance(obj, NumPyClient):
        raise ConfigError(f"--flower-client {spec}: {attr!r} gives a {type(obj).__qualname__}, not a flwr NumPyClient "
                          "(name a NumPyClient instance or a zero-argument factory returning one)")
    return obj


def _takes_arguments(factory: Callable[..., Any]) -> bool:
    """True if `factory` cannot be called without arguments (a client class that wants its data, say)."""
    try:
        inspect.signature(factory).bind()
    except TypeError:
        return True
    except ValueError:  # no signature to read (a builtin): the call will tell
        return False
    return False


def fit_config(manifest: Manifest, pid: int, round_: int, seed: int) -> dict[str, Scalar]:
    """The config a client's `fit` gets: the manifest's hyper-parameters, this trainer's seed for the round, the
    round, the project and its task."""
    hp = manifest.hyper
    return {"epochs": hp.epochs, "batch_size": hp.batch_size, "lr": hp.lr, "seed": seed, "round": round_,
            "project_id": pid, "task": manifest.task}


def to_arrays(flat: torch.Tensor, layout: list[ParamSlot]) -> list[np.ndarray]:
    """A flat float32 vector as one float32 array per parameter, in the model's order and shapes."""
    values = flat.detach().cpu().to(torch.float32).numpy()
    return [values[s.offset : s.offset + s.length].reshape(s.shape).copy() for s in layout]


def from_arrays(arrays: Any, layout: list[ParamSlot], who: str) -> torch.Tensor:
    """The flat float32 vector of a client's returned parameters; ConfigError naming the first parameter whose
    count, shape or values (NaN, infinity) do not fit `layout`."""
    if not isinstance(arrays, (list, tuple)) or len(arrays) != len(layout):
        got = f"{len(arrays)} arrays" if isinstance(arrays, (list, tuple)) else f"a {type(arrays).__qualname__}"
        raise ConfigError(f"{who} returned {got}; the model has {len(layout)} parameters "
                          f"({', '.join(s.name for s in layout)})")
    flat = []
    for slot, arr in zip(layout, arrays):
        a = np.asarray(arr)
        if a.shape != slot.shape:
            raise ConfigError(f"{who} returned parameter {slot.name!r} of shape {a.shape}; the model's is {slot.shape}")
        if not np.issubdtype(a.dtype, np.number):
            raise ConfigError(f"{who} returned parameter {slot.name!r} of dtype {a.dtype}, not a number")
        bad = int(a.size - np.isfinite(a).sum())
        if bad:
            raise ConfigError(f"{who} returned parameter {slot.name!r} with {bad} non-finite values (NaN or infinity)")
        flat.append(torch.from_numpy(a.astype(np.float32).reshape(-1)))
    return torch.cat(flat)


class FlowerTrainer:
    """A NumPyClient as a trainer's training step: `update` calls its `fit` and returns the float32 update."""

    def __init__(self, client: Any, layout: list[ParamSlot], name: str = "the Flower client") -> None:
        """`layout` is the project's model layout, `name` how errors name the client."""
        self.client = client
        self.layout = layout
        self.name = name
        self._last: tuple[str, torch.Tensor] | None = None

    def update(self, global_flat: torch.Tensor, manifest: Manifest, pid: int, round_: int, seed: int) -> torch.Tensor:
        """fit's parameters minus the global model, fit given `fit_config`. A repeat call for the same model and config
        (the reveal or cure of a sealed update) gives the sealed update again without refitting, and the global RNGs
        (torch, NumPy, random) are seeded with `seed` so a restarted trainer with a deterministic client recomputes it."""
        config = fit_config(manifest, pid, round_, seed)
        key = hashlib.sha256(global_flat.detach().cpu().numpy().tobytes() + repr(sorted(config.items())).encode()).hexdigest()
        if self._last is not None and self._last[0] == key:
            return self._last[1].clone()
        result = self._fit(to_arrays(global_flat, self.layout), config)
        if not isinstance(result, (list, tuple)) or len(result) != 3:
            raise ConfigError(f"{self.name}'s fit returned a {type(result).__qualname__}, "
                              "not (parameters, num_examples, metrics)")
        update = from_arrays(result[0], self.layout, f"{self.name}'s fit") - global_flat.detach().cpu().to(torch.float32)
        self._last = (key, update)
        return update.clone()

    def _fit(self, parameters: list[np.ndarray], config: dict[str, Scalar]) -> Any:
        """The client's fit, with torch, NumPy and random seeded by config["seed"] and their states restored after."""
        seed = int(config["seed"])
        np_state, py_state = np.random.get_state(), random.getstate()
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                np.random.seed(seed)
                random.seed(seed)
                return self.client.fit(parameters, dict(config))
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)


class TaskClient(NumPyClient):
    """The project's own local training (market.ml.training) as a Flower NumPyClient over one trainer's data;
    the demo's honest trainers with --flower."""

    def __init__(self, build: Callable[[], nn.Module], data: Split) -> None:
        """`build` makes the task's model, `data` is this trainer's private split."""
        self.build = build
        self.data = data

    def get_parameters(self, config: dict[str, Scalar]) -> list[np.ndarray]:
        """A freshly built model's parameters (Flower asks for them only to initialise a model)."""
        return [p.detach().cpu().numpy() for p in self.build().parameters()]

    def fit(self, parameters: list[np.ndarray], config: dict[str, Scalar]) -> tuple[list[np.ndarray], int, dict[str, Scalar]]:
        """Train from `parameters` with the config's hyper-parameters; the trained parameters, the sample count."""
        model = self.build()
        start = torch.cat([torch.from_numpy(np.asarray(p, dtype=np.float32)).reshape(-1) for p in parameters])
        hp = HyperParams(epochs=int(config["epochs"]), batch_size=int(config["batch_size"]), lr=float(config["lr"]),
                         seed=int(config["seed"]))
        trained = unflatten_into(model, start + local_update(self.build, start, self.data, hp))
        return [p.detach().cpu().numpy() for p in trained.parameters()], len(self.data), {}
