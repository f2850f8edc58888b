"""The owner's TOML project file: read, checked, and turned into the manifest and on-chain parameters."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from market.chain.marketplace import MAX_JOIN_DELAY, MAX_ROUNDS, MAX_WINDOW, MIN_WINDOW
from market.errors import ConfigError
from market.ml.tasks import get_task
from market.protocol.manifest import HyperParams, Manifest, RuleConfig, RuleName
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


def check_settings(pf: ProjectFile) -> None:
    """ConfigError naming the field for settings the marketplace refuses at createProject because they
    hurt honest parties (PROTOCOL.md §7, FedMarket._checkParams), before any gas is spent on them."""
    rule = pf.manifest.rule
    if not 1 <= pf.rounds <= MAX_ROUNDS:
        raise ConfigError(f"[project] rounds = {pf.rounds}: must be 1..{MAX_ROUNDS}")
    for name in ("open_window", "submit_window", "post_window"):
        value = getattr(pf, name)
        if not MIN_WINDOW <= value <= MAX_WINDOW:
            raise ConfigError(f"[project] {name} = {value} s: must be {MIN_WINDOW}..{MAX_WINDOW} s")
    if not 1 <= pf.join_window <= MAX_JOIN_DELAY:
        raise ConfigError(f"[project] join_window = {pf.join_window} s: must be 1..{MAX_JOIN_DELAY} s (365 days)")
    if pf.stake == 0:
        raise ConfigError("[project] stake = 0: a zero stake lets anyone fill every trainer slot for free")
    if pf.aggregator_bond == 0:
        raise ConfigError("[project] aggregator_bond = 0: the bond pays the trainers if the aggregator stalls")
    if pf.aggregator_bond < pf.budget // pf.rounds:
        raise ConfigError(f"[project] aggregator_bond = {pf.aggregator_bond} wei: below one round's budget "
                          f"({pf.budget // pf.rounds} wei), so a missed post could not make the round's submitters "
                          "whole (FedMarket refuses it at start)")
    if not 0 <= pf.slash_bps <= 10_000:
        raise ConfigError(f"[rule] slash_bps = {pf.slash_bps}: must be 0..10000")
    if rule.m > pf.max_trainers:
        raise ConfigError(f"[rule] m = {rule.m}: needs m <= max_trainers ({pf.max_trainers}); m = 0 selects n - f")
    if rule.rule != RuleName.MULTI_KRUM:
        return
    if rule.tau_pct == 0 and pf.slash_bps > 0:
        raise ConfigError("[rule] tau_pct = 0 with slash_bps > 0: plain Multi-Krum flags f honest trainers "
                          "every round; set tau_pct > 0 or slash_bps = 0")
    if 2 * rule.f >= pf.max_trainers:
        raise ConfigError(f"[rule] f = {rule.f}: Multi-Krum needs an honest majority, 2 f < max_trainers "
                          f"({pf.max_trainers})")
    if rule.m > pf.max_trainers - rule.f:
        raise ConfigError(f"[rule] m = {rule.m}: at most max_trainers - f ({pf.max_trainers - rule.f}), or "
                          "an attacker is always selected; m = 0 selects n - f")


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
        pf = ProjectFile(
            manifest=manifest,
            rounds=int(proj.get("rounds", 5)),
            min_trainers=int(proj.get("min_trainers", 2)),
            max_trainers=int(proj.get("max_trainers", 8)),
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
    check_settings(pf)
    return pf
