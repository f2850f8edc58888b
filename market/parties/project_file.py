"""The owner's TOML project file: read, checked, and turned into the manifest and on-chain parameters."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from market.errors import ConfigError
from market.ml.tasks import get_task
from market.protocol.manifest import HyperParams, Manifest, RuleConfig
from market.protocol.quant import QuantSpec

_UNITS = {"wei": 1, "gwei": 10**9, "ether": 10**18, "eth": 10**18}


def parse_amount(value: int | str) -> int:
    """An amount in wei from an int or a string such as '1.5 ether' or '200 gwei'."""
    if isinstance(value, int):
        return value
    parts = str(value).strip().split()
    if len(parts) == 1:
        parts.append("wei")
    if len(parts) != 2 or parts[1].lower() not in _UNITS:
        raise ConfigError(f"cannot read the amount {value!r}: write e.g. '2 ether', '300 gwei' or an integer of wei")
    from decimal import Decimal, InvalidOperation

    try:
        wei = Decimal(parts[0]) * _UNITS[parts[1].lower()]
    except InvalidOperation:
        raise ConfigError(f"cannot read the number in {value!r}") from None
    if wei != wei.to_integral_value() or wei < 0:
        raise ConfigError(f"{value!r} is not a whole, non-negative number of wei")
    return int(wei)


@dataclass(frozen=True)
class ProjectFile:
    """The owner's TOML project description (see examples/digits.toml)."""

    manifest: Manifest
    rounds: int
    min_trainers: int
    max_trainers: int
    budget: int
    stake: int
    aggregator_bond: int
    token: str
    aggregator: str | None
    join_window: int
    open_window: int
    submit_window: int
    post_window: int
    slash_bps: int
    extra: dict[str, Any] = field(default_factory=dict)


def _section(data: dict[str, Any], name: str) -> dict[str, Any]:
    """A TOML table, or an empty one."""
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"[{name}] must be a table")
    return value


def load_project_file(path: Path) -> ProjectFile:
    """Read and check a project TOML file; ConfigError names the field that is wrong."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"no project file at {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    proj, train, rule, quant = (_section(data, s) for s in ("project", "training", "rule", "quant"))
    try:
        task = get_task(str(proj.get("task", "digits-softmax")))
    except KeyError as exc:
        raise ConfigError(str(exc)) from None
    try:
        manifest = Manifest(
            task=task.name,
            spec_hash=task.spec_hash(),
            view=task.view(),
            hyper=HyperParams(**train),
            rule=RuleConfig(**{k: v for k, v in rule.items() if k != "slash_bps"}),
            quant=QuantSpec(**quant),
        )
        max_trainers = int(proj.get("max_trainers", 8))
        if manifest.rule.m > max_trainers or manifest.rule.f >= max_trainers:
            raise ConfigError(f"[rule] needs f < max_trainers and m <= max_trainers ({max_trainers}); m = 0 selects n - f")
        return ProjectFile(
            manifest=manifest,
            rounds=int(proj.get("rounds", 5)),
            min_trainers=int(proj.get("min_trainers", 2)),
            max_trainers=max_trainers,
            budget=parse_amount(proj.get("budget", "10 ether")),
            stake=parse_amount(proj.get("stake", "1 ether")),
            aggregator_bond=parse_amount(proj.get("aggregator_bond", "2 ether")),
            token=str(proj.get("token", "")) or "0x" + "00" * 20,
            aggregator=proj.get("aggregator"),
            join_window=int(proj.get("join_window", 3600)),
            open_window=int(proj.get("open_window", 600)),
            submit_window=int(proj.get("submit_window", 600)),
            post_window=int(proj.get("post_window", 900)),
            slash_bps=int(rule.get("slash_bps", 5000)),
        )
    except TypeError as exc:
        raise ConfigError(f"{path}: unknown or missing field ({exc})") from None
