"""`fedmarket owner ...`: create, fund, follow, cancel, settle and report projects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from market.cli.output import console
from market.cli.session import CHAIN, JSON, SIGNER, command, session

app = typer.Typer(help="The project owner: create, fund, follow, cancel, settle and report.", no_args_is_help=True)


@command(app, *CHAIN, *SIGNER, JSON)
def create(
    project_file: Path = typer.Argument(..., help="The project's TOML description (see examples/digits.toml)."),
    aggregator: str = typer.Option("", help="The aggregator's address (default: \\[project] aggregator in the file)."),
    verifier: str = typer.Option("", help="A round verifier already deployed for this circuit (default: build and deploy one)."),
) -> None:
    """Publish the task manifest and initial model, deploy the round verifier, escrow the budget."""
    from market.chain.client import checksummed
    from market.dev.report import ether
    from market.parties.owner import create_project
    from market.parties.project_file import load_project_file

    s = session()
    pf = load_project_file(project_file)
    agg = aggregator or pf.aggregator
    if not agg:
        raise typer.BadParameter("name the aggregator: --aggregator ADDRESS or [project] aggregator")
    agg = checksummed(agg, "--aggregator" if aggregator else f"{project_file}: [project] aggregator")
    created = create_project(s.marketplace, s.storage, pf, s.signer, agg,
                             checksummed(verifier, "--verifier") if verifier else None)
    lines = [*pf.notes, f"project {created.pid} created (budget {ether(pf.budget)}, verifier {created.verifier}, "
                        f"manifest {created.task_cid})"]
    s.show({"pid": created.pid, "verifier": created.verifier, "task_cid": created.task_cid, "model_cid": created.model_cid,
            "scale_log2": pf.manifest.quant.scale_log2, "notes": list(pf.notes)}, "\n".join(lines))


@command(app, *CHAIN, *SIGNER, JSON)
def fund(pid: int, amount: str = typer.Argument(..., help="e.g. '2 ether' or an integer of wei.")) -> None:
    """Add to a project's budget before training starts."""
    from market.dev.report import ether
    from market.parties.project_file import parse_amount

    s = session()
    wei = parse_amount(amount)
    s.marketplace.fund(pid, wei, s.signer)
    s.show({"pid": pid, "amount": wei}, f"project {pid}: added {ether(wei)} to the budget")


@command(app, *CHAIN, *SIGNER, JSON)
def start(pid: int) -> None:
    """Close joining and start training (enough trainers must have joined)."""
    s = session()
    s.marketplace.start(pid, s.signer)
    s.show({"pid": pid}, f"project {pid}: training started")


def _render_status(data: dict[str, Any]) -> None:
    """The status as tables."""
    from market.dev.report import ether

    head = Table(title=f"project {data['project']}: {data['state']}", show_header=False)
    for key in ("task", "round", "rounds", "round_open", "disputing", "owner", "aggregator"):
        head.add_row(key, str(data[key]))
    for key in ("budget", "budget_left", "owner_refund", "bond_held"):
        head.add_row(key, ether(data[key]))
    console.print(head)
    trainers = Table(title="trainers")
    for col in ("slot", "address", "status", "stake", "rewards"):
        trainers.add_column(col)
    for t in data["trainers"]:
        trainers.add_row(str(t["slot"]), t["address"], t["status"], ether(t["stake"]), ether(t["rewards"]))
    console.print(trainers)
    history = Table(title="rounds")
    for col in ("round", "val. accuracy", "flagged", "declined", "replays taken out", "post", "model"):
        history.add_column(col)
    for r in data["history"]:
        flagged = ", ".join(a[:10] for a, f in r["flags"].items() if f) or "-"
        declined = ", ".join(a[:10] for a in r["declined"]) or "-"
        replayed = ", ".join(a[:10] for a in r.get("replayed", [])) or "-"
        acc = f"{100 * r['val_accuracy']:.1f}%" if r["val_accuracy"] is not None else "?"
        post = (f"disputable until {r['dispute_end']}" if r["dispute_end"] is not None else "final") + (
            f"; cured: {', '.join(a[:10] for a in r['cured'])}" if r["cured"] else "")
        history.add_row(str(r["round"]), acc, flagged, declined, replayed, post, r["model_cid"][:20] + "…")
    console.print(history)


@command(app, *CHAIN, JSON)
def status(pid: int) -> None:
    """State, money, trainers and every posted round, read from the chain and storage."""
    from market.parties.owner import project_status

    s = session()
    s.show(project_status(s.marketplace, s.storage, pid), _render_status)


@command(app, *CHAIN, *SIGNER, JSON)
def cancel(pid: int) -> None:
    """Cancel before training starts: budget, stakes and bond all become refundable."""
    s = session()
    s.marketplace.cancel(pid, s.signer)
    s.show({"pid": pid}, f"project {pid} cancelled; withdraw with `fedmarket owner settle {pid}`")


@command(app, *CHAIN, *SIGNER, JSON)
def settle(pid: int) -> None:
    """Withdraw the owner's refundable balance (unspent budget, slashed stakes, dust)."""
    from market.dev.report import ether

    s = session()
    refund = s.marketplace.project(pid).owner_refund
    if refund:
        s.marketplace.withdraw_refund(pid, s.signer)
    s.show({"pid": pid, "amount": refund},
           f"project {pid}: withdrew {ether(refund)}" if refund else f"project {pid}: nothing to withdraw")


@command(app, *CHAIN, JSON)
def report(pid: int, out: Path = typer.Option(Path("build/report"), help="Folder for report.md.")) -> None:
    """Write a markdown report of every round (flags with reasons, scores, accuracy) from chain and storage."""
    from market.dev.report import project_markdown
    from market.parties.owner import project_status

    s = session()
    data = project_status(s.marketplace, s.storage, pid)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "report.md"
    path.write_text(project_markdown(data))
    s.show({"path": str(path)}, f"report written to {path}")
