"""`fedmarket owner ...`: create, fund, follow, cancel, settle and report projects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from market.cli.common import DEV_ACCOUNT, IPFS, JSON, KEYSTORE, MARKET, RPC, connect, done, endpoint, failures, show, signer
from market.cli.output import console

app = typer.Typer(help="The project owner: create, fund, follow, cancel, settle and report.", no_args_is_help=True)
ETHER = 10**18


def _eth(wei: int) -> str:
    """Wei as ether with 6 decimals."""
    return f"{wei / ETHER:.6f}"


@app.command()
def create(
    project_file: Path = typer.Argument(..., help="The project's TOML description (see examples/digits.toml)."),
    aggregator: str = typer.Option("", help="The aggregator's address (default: [project] aggregator in the file)."),
    verifier: str = typer.Option("", help="A round verifier already deployed for this circuit (default: build and deploy one)."),
    keystore: Path | None = KEYSTORE, dev_account: int | None = DEV_ACCOUNT,
    rpc: str = RPC, ipfs: str = IPFS, market: str = MARKET, as_json: bool = JSON,
) -> None:
    """Publish the task manifest and initial model, deploy the round verifier, escrow the budget."""
    from market.parties.owner import create_project
    from market.parties.project_file import load_project_file

    with failures():
        pf = load_project_file(project_file)
        agg = aggregator or pf.aggregator
        if not agg:
            raise typer.BadParameter("name the aggregator: --aggregator ADDRESS or [project] aggregator")
        mk, storage = connect(endpoint(rpc, ipfs, market))
        created = create_project(mk, storage, pf, signer(keystore, dev_account), agg, verifier or None)
        done(f"project {created.pid} created (budget {_eth(pf.budget)}, verifier {created.verifier}, "
             f"manifest {created.task_cid})", as_json, pid=created.pid, verifier=created.verifier,
             task_cid=created.task_cid, model_cid=created.model_cid)


@app.command()
def fund(
    pid: int, amount: str = typer.Argument(..., help="e.g. '2 ether' or an integer of wei."),
    keystore: Path | None = KEYSTORE, dev_account: int | None = DEV_ACCOUNT,
    rpc: str = RPC, ipfs: str = IPFS, market: str = MARKET, as_json: bool = JSON,
) -> None:
    """Add to a project's budget before training starts."""
    from market.parties.project_file import parse_amount

    with failures():
        wei = parse_amount(amount)
        mk, _ = connect(endpoint(rpc, ipfs, market))
        mk.fund(pid, wei, signer(keystore, dev_account))
        done(f"project {pid}: added {_eth(wei)} to the budget", as_json, pid=pid, amount=wei)


@app.command()
def start(pid: int, keystore: Path | None = KEYSTORE, dev_account: int | None = DEV_ACCOUNT,
          rpc: str = RPC, ipfs: str = IPFS, market: str = MARKET, as_json: bool = JSON) -> None:
    """Close joining and start training (enough trainers must have joined)."""
    with failures():
        mk, _ = connect(endpoint(rpc, ipfs, market))
        mk.start(pid, signer(keystore, dev_account))
        done(f"project {pid}: training started", as_json, pid=pid)


def _render_status(data: dict[str, Any]) -> None:
    """The status as tables."""
    head = Table(title=f"project {data['project']}: {data['state']}", show_header=False)
    for key in ("task", "round", "rounds", "round_open", "owner", "aggregator"):
        head.add_row(key, str(data[key]))
    for key in ("budget", "budget_left", "owner_refund", "bond_held"):
        head.add_row(key, _eth(data[key]))
    console.print(head)
    trainers = Table(title="trainers")
    for col in ("slot", "address", "status", "stake", "rewards"):
        trainers.add_column(col)
    for t in data["trainers"]:
        trainers.add_row(str(t["slot"]), t["address"], t["status"], _eth(t["stake"]), _eth(t["rewards"]))
    console.print(trainers)
    history = Table(title="rounds")
    for col in ("round", "val. accuracy", "flagged", "model"):
        history.add_column(col)
    for r in data["history"]:
        flagged = ", ".join(a[:10] for a, f in r["flags"].items() if f) or "-"
        acc = f"{100 * r['val_accuracy']:.1f}%" if r["val_accuracy"] is not None else "?"
        history.add_row(str(r["round"]), acc, flagged, r["model_cid"][:20] + "…")
    console.print(history)


@app.command()
def status(pid: int, rpc: str = RPC, ipfs: str = IPFS, market: str = MARKET, as_json: bool = JSON) -> None:
    """State, money, trainers and every posted round, read from the chain and storage."""
    from market.parties.owner import project_status

    with failures():
        mk, storage = connect(endpoint(rpc, ipfs, market))
        show(project_status(mk, storage, pid), as_json, _render_status)


@app.command()
def cancel(pid: int, keystore: Path | None = KEYSTORE, dev_account: int | None = DEV_ACCOUNT,
           rpc: str = RPC, ipfs: str = IPFS, market: str = MARKET, as_json: bool = JSON) -> None:
    """Cancel before training starts: budget, stakes and bond all become refundable."""
    with failures():
        mk, _ = connect(endpoint(rpc, ipfs, market))
        mk.cancel(pid, signer(keystore, dev_account))
        done(f"project {pid} cancelled; withdraw with `fedmarket owner settle {pid}`", as_json, pid=pid)


@app.command()
def settle(pid: int, keystore: Path | None = KEYSTORE, dev_account: int | None = DEV_ACCOUNT,
           rpc: str = RPC, ipfs: str = IPFS, market: str = MARKET, as_json: bool = JSON) -> None:
    """Withdraw the owner's refundable balance (unspent budget, slashed stakes, dust)."""
    with failures():
        mk, _ = connect(endpoint(rpc, ipfs, market))
        refund = mk.project(pid).owner_refund
        if refund:
            mk.withdraw_refund(pid, signer(keystore, dev_account))
        done(f"project {pid}: withdrew {_eth(refund)}" if refund else f"project {pid}: nothing to withdraw",
             as_json, pid=pid, amount=refund)


@app.command()
def report(pid: int, out: Path = typer.Option(Path("build/report"), help="Folder for report.md."),
           rpc: str = RPC, ipfs: str = IPFS, market: str = MARKET, as_json: bool = JSON) -> None:
    """Write a markdown report of every round (flags with reasons, scores, accuracy) from chain and storage."""
    from market.parties.owner import project_status

    with failures():
        mk, storage = connect(endpoint(rpc, ipfs, market))
        data = project_status(mk, storage, pid)
        out.mkdir(parents=True, exist_ok=True)
        lines = [f"# project {pid} ({data['state']})", "", "| round | val. accuracy | flagged (reason) | scores |",
                 "| --- | --- | --- | --- |"]
        for r in data["history"]:
            reasons = ", ".join(f"`{a[:10]}` ({why.split(':')[0]})" for a, why in r["reasons"].items()) or "-"
            scores = ", ".join(f"{s}" for s in r["scores"].values())
            lines.append(f"| {r['round']} | {100 * (r['val_accuracy'] or 0):.1f}% | {reasons} | {scores} |")
        lines += ["", "| trainer | status | stake | rewards |", "| --- | --- | --- | --- |"]
        lines += [f"| `{t['address']}` | {t['status']} | {_eth(t['stake'])} | {_eth(t['rewards'])} |" for t in data["trainers"]]
        path = out / "report.md"
        path.write_text("\n".join(lines) + "\n")
        done(f"report written to {path}", as_json, path=str(path))
