"""`fedmarket projects [--state S]` and `fedmarket projects show PID`: find a project to join (market.parties.listing)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from market.cli.output import console
from market.cli.session import CHAIN, JSON, SessionGroup, command, session

if TYPE_CHECKING:
    from market.parties.listing import MarketListing


class StateFilter(StrEnum):
    """The `--state` choices (market.parties.listing.STATE_FILTERS: "open" includes projects awaiting their bond)."""

    OPEN = "open"
    TRAINING = "training"
    FINISHED = "finished"
    CANCELLED = "cancelled"


class ListingGroup(SessionGroup):
    """The `projects` group, which lists when given no command: it takes the chain options and --json after
    `projects` too, as a command does."""

    shared = frozenset((*CHAIN, JSON))


app = typer.Typer(cls=ListingGroup, help="Find a project: list the market's projects, show one before joining it.")


def _market_listing() -> MarketListing:
    """The session's marketplace and storage, read once."""
    from market.parties.listing import MarketListing

    s = session()
    return MarketListing(s.marketplace, s.storage)


def _money(wei: int, token: str) -> str:
    """An amount in ether for an ETH project, in base units of the token otherwise."""
    from market.dev.report import ether

    return f"{ether(wei)} ETH" if token == "ETH" else f"{wei} of {token[:10]}…"


def _when(timestamp: int) -> str:
    """A chain timestamp in UTC."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _record(record: dict[str, int]) -> str:
    """A past record in one line."""
    return (f"{record['finished']}/{record['projects']} finished, {record['rounds_timed_out']} timed out, "
            f"{record['flags_overturned']} flags overturned")


def _render_list(data: dict[str, Any]) -> None:
    """The listing as one table, one row per project."""
    table = Table(title=f"projects on {data['market']}")
    for col in ("pid", "state", "task", "params", "budget", "stake", "slots", "join by", "rounds", "keys",
                "owner's record", "aggregator's record"):
        table.add_column(col)
    for p in data["projects"]:
        slots = f"{p['slots_taken']}/{p['max_trainers']}" + (" open" if p["joinable"] else "")
        table.add_row(
            str(p["pid"]), p["state"], p["task"] or p["manifest"].split(":")[0], str(p["model_params"] or "?"),
            _money(p["budget"], p["token"]), _money(p["stake"], p["token"]), slots, _when(p["join_deadline"]),
            f"{p['rounds_done']}/{p['rounds']}", p["verifier_setup"]["summary"], _record(p["owner_record"]),
            _record(p["aggregator_record"]),
        )
    console.print(table)


@app.callback(invoke_without_command=True)
def projects(
    ctx: typer.Context,
    state: StateFilter | None = typer.Option(None, "--state", help="Only projects in this state."),
) -> None:
    """List the market's projects: task, money, slots, deadlines, rounds, keys and the owner's and aggregator's record."""
    if ctx.invoked_subcommand is not None:
        return
    from market.parties.listing import STATE_FILTERS

    s = session()
    found = _market_listing().listings(None if state is None else STATE_FILTERS[state.value])
    s.show({"market": s.marketplace.address, "state": None if state is None else state.value,
            "projects": [p.as_json() for p in found]}, _render_list)


def _render_show(data: dict[str, Any]) -> None:
    """One project as tables: what the chain fixes, the manifest, the rule and the circuit."""
    head = Table(title=f"project {data['pid']}: {data['state']}", show_header=False)
    token = data["token"]
    rows = [
        ("task", f"{data['task']} ({data['model_params']} parameters)"), ("manifest", f"{data['task_cid']} ({data['manifest']})"),
        ("manifest sha256", data["manifest_sha256"]), ("owner", data["owner"]), ("aggregator", data["aggregator"]),
        ("token", token), ("budget", _money(data["budget"], token)), ("budget left", _money(data["budget_left"], token)),
        ("per round", _money(data["round_budget"], token) + " (the last round takes what is left)"),
        ("stake", _money(data["stake"], token)), ("aggregator bond", _money(data["aggregator_bond"], token)),
        ("slots", f"{data['slots_taken']}/{data['max_trainers']} taken, at least {data['min_trainers']} to start"),
        ("join by", _when(data["join_deadline"]) + (" (open)" if data["joinable"] else " (closed)")),
        ("rounds", f"{data['rounds_done']}/{data['rounds']} done"),
        ("windows (s)", ", ".join(f"{k} {v}" for k, v in data["windows"].items())),
        ("verifier", f"{data['verifier']}: {data['verifier_setup']['summary']}"),
        ("owner's record", _record(data["owner_record"])), ("aggregator's record", _record(data["aggregator_record"])),
    ]
    for key, value in rows:
        head.add_row(key, str(value))
    console.print(head)
    details = Table(title="rule, training and circuit", show_header=False)
    for section in ("rule", "hyper", "quant", "view", "circuit"):
        details.add_row(section, ", ".join(f"{k}={v}" for k, v in data[section].items()))
    console.print(details)
    if data["own_data"] is not None:
        console.print(f"own data: the model file {data['own_data']['model_cid']} is Python code that will run on your "
                      "machine: read it before you join.")
    console.print(f"keys: {data['verifier_setup']['detail']}")


@command(app, *CHAIN, JSON)
def show(pid: int) -> None:
    """Everything a trainer needs to decide: the manifest checked against the chain, rule, per-round budget, circuit."""
    session().show(_market_listing().details(pid).as_json(), _render_show)
