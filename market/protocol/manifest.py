"""A project's description: read from the owner's TOML file, published to storage as the task manifest.

The manifest (JSON, its CID recorded in the ProjectCreated event) tells trainers and the
aggregator everything the chain does not hold: the task, the local hyper-parameters, the rule
and the quantization. Its hash is bound into the project's specHash, so it cannot be swapped.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from market.errors import AggregationError, ConfigError
from market.protocol.quant import QuantSpec

MANIFEST_VERSION = 1


class RuleName(StrEnum):
    """The outlier rules, by the name a manifest's `rule.rule` holds: the one vocabulary of rules.

    The aggregator's registry (aggregator/rules/registry.py) has one class per name, which also
    gives the rule's on-chain `Rule` value; the evaluation labels its runs with these names.
    """

    MULTI_KRUM = "multi_krum"
    FLTRUST = "fltrust"
    NONE = "none"


#: Every rule name, in declaration order.
RULES: tuple[str, ...] = tuple(RuleName)


@dataclass(frozen=True)
class HyperParams:
    """The project's local-training hyper-parameters (defaults tuned on digits by aggregator/eval/evaluate.py)."""

    epochs: int = 10
    batch_size: int = 16
    lr: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        """ConfigError naming a value that would make every trainer's update zero, undefined or against the loss."""
        for name in ("epochs", "batch_size", "seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < (0 if name == "seed" else 1):
                raise ConfigError(f"{name} = {value!r}: must be an integer of at least {0 if name == 'seed' else 1}")
        if not isinstance(self.lr, (int, float)) or isinstance(self.lr, bool) or not 0 < self.lr < math.inf:
            raise ConfigError(f"lr = {self.lr!r}: the learning rate must be a finite number above 0")


@dataclass(frozen=True)
class RuleConfig:
    """Which outlier rule and its parameters.

    Defaults tuned with aggregator/eval/evaluate.py for 10 trainers (k = n0 - f - 2 = 6 neighbours,
    6 selected, others flagged beyond 1.75 x s_ref). `m` must stay at most n0 minus the expected
    attackers, or selected attackers are never flagged. The free-rider screens (multi_krum only):
    copies within 5% relative squared distance of an earlier update, and squared norms below 10%
    of the selected mean; honest digits trainers stay above 40% on both (aggregator/eval/evaluate.py).
    """

    rule: str = RuleName.MULTI_KRUM
    f: int = 2
    m: int = 6
    tau_pct: int = 175
    dup_pct: int = 5
    floor_pct: int = 10
    cos_threshold_pct: int = 0

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise AggregationError(f"unknown rule {self.rule!r}; choose one of {[str(r) for r in RULES]}")
        if min(self.f, self.m, self.tau_pct, self.dup_pct, self.floor_pct) < 0:
            raise AggregationError(f"rule parameters must be >= 0: {self}")


#: Feature preprocessing an own-data manifest may declare: per-feature (x - mean) / std, or none.
PREPROCESSES: tuple[str, ...] = ("standardize", "none")


@dataclass(frozen=True)
class DataSchema:
    """What an own-data project's rows look like, and how every party preprocesses them.

    `features` columns besides `label_column` (CSV), labels in 0..classes-1. "standardize" maps
    each feature to (x - mean) / std with the statistics of the owner's validation split, which
    the manifest publishes, so trainers and the aggregator scale alike; "none" is a declared choice.
    """

    features: int
    classes: int
    label_column: str = "label"
    preprocess: str = "standardize"
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.features < 1 or self.classes < 2:
            raise ConfigError(f"a data schema needs >= 1 feature and >= 2 classes, got {self.features} and {self.classes}")
        if self.preprocess not in PREPROCESSES:
            raise ConfigError(f"preprocess = {self.preprocess!r}: choose one of {PREPROCESSES}")
        want = self.features if self.preprocess == "standardize" else 0
        if len(self.mean) != want or len(self.std) != want:
            raise ConfigError(f"preprocess = {self.preprocess!r} takes {want} means and stds, got "
                              f"{len(self.mean)} and {len(self.std)}")
        if any(not s > 0 for s in self.std):
            raise ConfigError("every standardisation std must be > 0")


@dataclass(frozen=True)
class DataSpec:
    """An own-data project's task: its schema, and the CIDs of the owner's model file (Python defining
    `build_model`) and validation split (market.ml.tasks.owndata), from which anyone rebuilds the task."""

    schema: DataSchema
    model_cid: str
    val_cid: str
    view_prefix: str | None = None


@dataclass(frozen=True)
class Manifest:
    """What trainers and the aggregator need to take part, published by the owner; `data` only for own data."""

    task: str
    spec_hash: str
    view: tuple[int, int]
    hyper: HyperParams
    rule: RuleConfig
    quant: QuantSpec
    version: int = MANIFEST_VERSION
    data: DataSpec | None = None

    def to_json(self) -> bytes:
        """Canonical JSON bytes (sorted keys), the form stored and hashed; a built-in task's has no `data` key."""
        data = asdict(self)
        data["view"] = list(self.view)
        if self.data is None:
            del data["data"]
        return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        """Parse a stored manifest; ConfigError names what is wrong."""
        try:
            data = json.loads(raw)
            if data.get("version") != MANIFEST_VERSION:
                raise ConfigError(f"unsupported manifest version {data.get('version')!r}")
            return cls(
                task=str(data["task"]),
                spec_hash=str(data["spec_hash"]),
                view=(int(data["view"][0]), int(data["view"][1])),
                hyper=HyperParams(**data["hyper"]),
                rule=RuleConfig(**data["rule"]),
                quant=QuantSpec(**data["quant"]),
                data=_data_spec(data["data"]) if "data" in data else None,
            )
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise ConfigError(f"malformed task manifest: {exc}") from None

    def digest(self) -> bytes:
        """The 32 bytes recorded on chain as specHash: sha256 of the canonical manifest."""
        return hashlib.sha256(self.to_json()).digest()


def _data_spec(raw: dict[str, Any]) -> DataSpec:
    """A manifest's `data` object (JSON lists back to tuples)."""
    schema = dict(raw["schema"])
    schema["mean"], schema["std"] = tuple(schema.get("mean", ())), tuple(schema.get("std", ()))
    view_prefix = raw.get("view_prefix")
    return DataSpec(DataSchema(**schema), str(raw["model_cid"]), str(raw["val_cid"]),
                    None if view_prefix is None else str(view_prefix))
