"""`fedmarket zk ...`: the round circuit of a project, its development keys, and a phase-2 ceremony."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from market.cli.session import JSON, command, session

if TYPE_CHECKING:
    from zk.build import CircuitParams

app = typer.Typer(help="Round circuits and their keys: development setup and phase-2 ceremony (docs/ZK.md).",
                  no_args_is_help=True)
ceremony = typer.Typer(help="Production keys: a public ptau plus contributions from the project's parties.",
                       no_args_is_help=True)
app.add_typer(ceremony, name="ceremony")

PROJECT = typer.Argument(..., help="The project's TOML file: it fixes the circuit (slots, view, bits, rule parameters).")


def _params(project_file: Path) -> CircuitParams:
    """The round circuit a project file needs (slots, view length, bits, Multi-Krum parameters)."""
    from market.parties.project_file import load_project_file
    from zk.build import CircuitParams

    pf = load_project_file(project_file)
    return CircuitParams.for_rule(pf.max_trainers, pf.manifest.view[1], pf.manifest.quant.bits, pf.manifest.rule)


def _artifacts(project_file: Path) -> Path:
    """Compile (cached) the project's round circuit; its artifact folder."""
    from zk.build import compile_circuit

    return compile_circuit(_params(project_file))


@command(app, JSON)
def info(project_file: Path = PROJECT) -> None:
    """Compile the project's circuit (cached) and show its size, folder and how its keys were made."""
    from dataclasses import asdict

    from zk.build import check_setup_mark, compile_circuit, constraint_count

    params = _params(project_file)
    out = compile_circuit(params)
    setup = check_setup_mark(out).get("setup") if (out / "SETUP.json").exists() else "none yet"
    constraints = constraint_count(out)
    session().show({"artifacts": str(out), "constraints": constraints, "params": asdict(params), "setup": setup},
                   f"circuit {params}: {constraints:,} constraints in {out}; keys: {setup}")


@command(ceremony, JSON, name="local-ptau")
def local_ptau(power: int = typer.Option(..., help="log2 of the largest circuit (constraints)."),
               out: Path = typer.Option(Path("build/zk/ptau/local.ptau"))) -> None:
    """Make a powers-of-tau file here (INSECURE: for rehearsing a ceremony; production takes a public ptau)."""
    from zk.ceremony import local_ptau as make

    path = make(power, out)
    session().show({"ptau": str(path)}, f"local (insecure) ptau at {path}")


@command(ceremony, JSON)
def start(project_file: Path = PROJECT, ptau: Path = typer.Option(..., help="Prepared phase-2 powers of tau.")) -> None:
    """Phase 2, step 0: the circuit's initial zkey (not yet usable: no contribution)."""
    from zk.ceremony import start as begin

    zkey = begin(_artifacts(project_file), ptau)
    session().show({"zkey": str(zkey)}, f"ceremony started: {zkey}; now each party runs `fedmarket zk ceremony contribute`")


@command(ceremony, JSON)
def contribute(project_file: Path = PROJECT, name: str = typer.Option(..., help="Who contributes (recorded).")) -> None:
    """Add one contribution (fresh randomness) on top of the latest zkey."""
    from zk.ceremony import contribute as add

    zkey = add(_artifacts(project_file), name)
    session().show({"zkey": str(zkey)}, f"contribution of {name} written to {zkey}")


@command(ceremony, JSON)
def beacon(project_file: Path = PROJECT,
           hex_value: str = typer.Option(..., "--hex", help="Public randomness, e.g. a future block hash.")) -> None:
    """A final contribution from public randomness nobody could choose in advance."""
    from zk.ceremony import beacon as add

    zkey = add(_artifacts(project_file), hex_value.removeprefix("0x"))
    session().show({"zkey": str(zkey)}, f"beacon applied: {zkey}")


@command(ceremony, JSON)
def finalize(project_file: Path = PROJECT, ptau: Path = typer.Option(..., help="The ptau the ceremony started from.")) -> None:
    """Verify the contribution chain and install the keys that `owner create` and the aggregator then use."""
    from zk.ceremony import finalize as close

    out = close(_artifacts(project_file), ptau)
    session().show({"artifacts": str(out)}, f"ceremony keys installed in {out}")
