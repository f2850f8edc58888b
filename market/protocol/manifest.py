"""A project's description: read from the owner's TOML file, published to storage as the task manifest.

The manifest (JSON, its CID recorded in the ProjectCreated event) tells trainers and the
aggregator everything the chain does not hold: the task, the local hyper-parameters, the rule
and the quantization. Its hash is bound into the project's specHash, so it cannot be swapped.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from enum import StrEnum

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
            raise AggregationError(f"unknown rule {self.rule!r}; choose one of {RULES}")
        if min(self.f, self.m, self.tau_pct, self.dup_pct, self.floor_pct) < 0:
            raise AggregationError(f"rule parameters must be >= 0: {self}")


@dataclass(frozen=True)
class Manifest:
    """What trainers and the aggregator need to take part, published by the owner."""

    task: str
    spec_hash: str
    view: tuple[int, int]
    hyper: HyperParams
    rule: RuleConfig
    quant: QuantSpec
    version: int = MANIFEST_VERSION

    def to_json(self) -> bytes:
        """Canonical JSON bytes (sorted keys), the form stored and hashed."""
        data = asdict(self)
        data["view"] = list(self.view)
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
            )
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise ConfigError(f"malformed task manifest: {exc}") from None

    def digest(self) -> bytes:
        """The 32 bytes recorded on chain as specHash: sha256 of the canonical manifest."""
        return hashlib.sha256(self.to_json()).digest()
