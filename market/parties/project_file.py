"""The owner's TOML project file: read, checked, and turned into the manifest and on-chain parameters."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from market.chain.marketplace import MAX_JOIN_DELAY, MAX_ROUNDS, MAX_WINDOW, MIN_WINDOW
from market.errors import AggregationError, ConfigError, QuantizationError
from market.ml.tasks import BUILTIN, Task, flatten, get_task
from market.ml.tasks.owndata import encode_split, owner_data, scale_warning
from market.ml.training import local_update
from market.protocol.manifest import DataSpec, HyperParams, Manifest, RuleConfig, RuleName
from market.protocol.quant import MAX_CLIP_RATE, UPDATE_MARGIN, QuantSpec, clip_rate, fit_scale_log2
from market.storage import cid_of

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
    blobs: tuple[bytes, ...] = ()
    notes: tuple[str, ...] = ()


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
    if not 1 <= pf.min_trainers <= pf.max_trainers:
        raise ConfigError(f"[project] min_trainers = {pf.min_trainers}: must be 1..max_trainers ({pf.max_trainers})")
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


#: The tables of a project file, and the keys of [project] (the others' keys are their dataclasses' fields).
TABLES = ("project", "training", "rule", "quant")
PROJECT_KEYS = ("task", "rounds", "min_trainers", "max_trainers", "budget", "stake", "aggregator_bond", "token",
                "aggregator", "join_window", "open_window", "submit_window", "post_window")
#: [project] keys of an own-data project: the data file and model file (paths relative to the project file), the
#: CSV's label column, the feature preprocessing and the proof view's parameter-name prefix (default: the whole model).
OWN_DATA_KEYS = ("data", "model", "label_column", "preprocess", "view")


@dataclass(frozen=True)
class TaskChoice:
    """What the project file's task gives the manifest, and what the owner publishes or should read."""

    task: Task
    quant: QuantSpec
    data: DataSpec | None = None
    blobs: tuple[bytes, ...] = ()
    notes: tuple[str, ...] = ()


def _check_keys(data: dict[str, Any], proj: dict[str, Any], path: Path) -> None:
    """ConfigError naming an unknown table or [project] key (a misspelt key is never silently ignored)."""
    tables = [k for k in data if k not in TABLES]
    if tables:
        raise ConfigError(f"{path}: unknown table or top-level key {tables[0]!r}; the tables are {list(TABLES)} "
                          f"(own data: data = and model = go in [project])")
    unknown = [k for k in proj if k not in PROJECT_KEYS + OWN_DATA_KEYS]
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]!r} in [project]; known: {sorted(PROJECT_KEYS + OWN_DATA_KEYS)}")


def _builtin_task(proj: dict[str, Any], quant: dict[str, Any]) -> TaskChoice:
    """A built-in task named by [project] task, quantized as [quant] says (defaults 16 bits, scale_log2 12)."""
    stray = [k for k in OWN_DATA_KEYS if k in proj]
    if stray:
        raise ConfigError(f"[project] {stray[0]} is for own data: give data = FILE and model = FILE with it")
    name = str(proj.get("task", "digits-softmax"))
    if name not in BUILTIN:
        raise ConfigError(f"unknown task {name!r}: the built-in tasks are {sorted(BUILTIN)}; for your own data give "
                          "data = FILE (.csv, .npz or an image folder) and model = FILE (Python defining build_model) "
                          "in [project]")
    return TaskChoice(get_task(name), QuantSpec(**quant))


def _own_task(proj: dict[str, Any], hyper: HyperParams, quant: dict[str, Any], path: Path) -> TaskChoice:
    """The owner's data and model files as a task, its data spec, the quantization (declared, or fitted to the owner's
    trial round: one local update on the owner's training split, market.protocol.quant.fit_scale_log2) and notes."""
    missing = [k for k in ("data", "model") if not proj.get(k)]
    if missing:
        raise ConfigError(f"[project] {missing[0]} = FILE is missing: own data needs both data = FILE and model = FILE")
    data_path, model_path = (path.parent / str(proj[k]) for k in ("data", "model"))
    if not data_path.exists():
        raise ConfigError(f"[project] data = {proj['data']!r}: no such file or folder ({data_path})")
    name = str(proj.get("task") or data_path.stem)
    if name in BUILTIN:
        raise ConfigError(f"[project] task = {name!r} names a built-in task; give your own data another name")
    own = owner_data(name, data_path, model_path, proj.get("view") or None,
                     label_column=str(proj.get("label_column", "label")), preprocess=str(proj.get("preprocess", "standardize")))
    task = own.task
    assert task.schema is not None  # an own task always has one
    try:
        view = task.view()
    except ValueError as exc:
        raise ConfigError(f"[project] view = {proj.get('view')!r}: {exc}") from None
    notes = [f"warning: {w}" for w in [scale_warning(own.x, own.names, task.schema)] if w]
    g0 = flatten(task.model(0))
    trial = local_update(task.build_model, g0, task.train, hyper)
    lo, hi = view[0], view[0] + view[1]
    if "scale_log2" in quant:
        spec = QuantSpec(**quant)
        rate = clip_rate(trial, spec)
        notes.append(f"quant: scale_log2 = {spec.scale_log2} (declared); the owner's trial update clips {100 * rate:.2f}% of "
                     f"its values at it (range +-{spec.clip:g})")
        if rate > MAX_CLIP_RATE:
            notes.append(f"warning: trainers refuse updates that clip more than {100 * MAX_CLIP_RATE:g}%: lower [quant] "
                         f"scale_log2 to {fit_scale_log2(trial, (g0 + trial)[lo:hi], spec.bits)} or drop it")
    else:
        bits = int(quant.get("bits", QuantSpec().bits))
        spec = QuantSpec(**{**quant, "scale_log2": fit_scale_log2(trial, (g0 + trial)[lo:hi], bits)})
        notes.append(f"quant: scale_log2 = {spec.scale_log2} from the owner's trial round (largest update value "
                     f"{float(trial.abs().max()):.4g}, range +-{spec.clip:g}: {UPDATE_MARGIN:g}x headroom)")
    source_cid, val_blob = str(cid_of(own.model_source)), encode_split(*own.val)
    data = DataSpec(task.schema, source_cid, str(cid_of(val_blob)), proj.get("view") or None)
    return TaskChoice(task, spec, data, (own.model_source, val_blob), tuple(notes))


def load_project_file(path: Path) -> ProjectFile:
    """Read and check a project TOML file; ConfigError names the field that is wrong."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"no project file at {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    proj, train, rule, quant = (_section(data, s) for s in TABLES)
    _check_keys(data, proj, path)
    try:
        with _table("training", ConfigError):
            hyper = HyperParams(**train)
        own = "data" in proj or "model" in proj
        with _table("quant", QuantizationError):
            choice = _own_task(proj, hyper, quant, path) if own else _builtin_task(proj, quant)
        task = choice.task
        with _table("rule", AggregationError):
            rule_config = RuleConfig(**{k: v for k, v in rule.items() if k != "slash_bps"})
        manifest = Manifest(
            task=task.name,
            spec_hash=task.spec_hash(),
            view=task.view(),
            hyper=hyper,
            rule=rule_config,
            quant=choice.quant,
            data=choice.data,
        )
        pf = ProjectFile(
            manifest=manifest,
            rounds=_int(proj, "project", "rounds", 5),
            min_trainers=_int(proj, "project", "min_trainers", 2),
            max_trainers=_int(proj, "project", "max_trainers", 8),
            budget=parse_amount(proj.get("budget", "10 ether")),
            stake=parse_amount(proj.get("stake", "1 ether")),
            aggregator_bond=parse_amount(proj.get("aggregator_bond", "2 ether")),
            token=str(proj.get("token", "")) or "0x" + "00" * 20,
            aggregator=proj.get("aggregator"),
            join_window=_int(proj, "project", "join_window", 3600),
            open_window=_int(proj, "project", "open_window", 600),
            submit_window=_int(proj, "project", "submit_window", 600),
            post_window=_int(proj, "project", "post_window", 900),
            slash_bps=_int(rule, "rule", "slash_bps", 5000),
            blobs=choice.blobs,
            notes=choice.notes,
        )
    except TypeError as exc:
        raise ConfigError(f"{path}: unknown or missing field ({exc})") from None
    check_settings(pf)
    return pf


def _int(table: dict[str, Any], name: str, key: str, default: int) -> int:
    """An integer key of a table (TOML's own integers only: "five" or 5.5 is not silently read as some number)."""
    value = table.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"[{name}] {key} = {value!r}: must be an integer")
    return value


@contextmanager
def _table(name: str, error: type[Exception]) -> Iterator[None]:
    """Bad input, naming its table, where HyperParams, QuantSpec or RuleConfig refuses a value with `error`."""
    try:
        yield
    except error as exc:
        raise ConfigError(f"[{name}] {exc}") from None
