"""`fedmarket zk ...`: the round circuit of a project, its development keys, and a phase-2 ceremony."""

from __future__ import annotations

from pathlib import Path

import typer

from market.cli.common import JSON, done, failures

app = typer.Typer(help="Round circuits and their keys: development setup and phase-2 ceremony (docs/ZK.md).",
                  no_args_is_help=True)
ceremony = typer.Typer(help="Production keys: a public ptau plus contributions from the project's parties.",
                       no_args_is_help=True)
app.add_typer(ceremony, name="ceremony")

PROJECT = typer.Argument(..., help="The project's TOML file: it fixes the circuit (slots, view, bits, rule parameters).")


def _params(project_file: Path):  # noqa: ANN202 - zk.build.CircuitParams
    """The round circuit a project file needs (slots, view length, bits, Multi-Krum parameters)."""
    from market.parties.project_file import load_project_file
    from zk.build import CircuitParams

    pf = load_project_file(project_file)
    return CircuitParams.for_rule(pf.max_trainers, pf.manifest.view[1], pf.manifest.quant.bits, pf.manifest.rule)


def _artifacts(project_file: Path) -> Path:
    """Compile (cached) the project's round circuit; its artifact folder."""
    from zk.build import compile_circuit

    return compile_circuit(_params(project_file))


@app.command()
def info(project_file: Path = PROJECT, as_json: bool = JSON) -> None:
    """Compile the project's circuit (cached) and show its size, folder and how its keys were made."""
    from dataclasses import asdict

    from zk.build import check_setup_mark, compile_circuit, constraint_count

    with failures():
        params = _params(project_file)
        out = compile_circuit(params)
        setup = check_setup_mark(out).get("setup") if (out / "SETUP.json").exists() else "none yet"
        constraints = constraint_count(out)
        done(f"circuit {params}: {constraints:,} constraints in {out}; keys: {setup}", as_json,
             artifacts=str(out), constraints=constraints, params=asdict(params), setup=setup)


@ceremony.command("local-ptau")
def local_ptau(power: int = typer.Option(..., help="log2 of the largest circuit (constraints)."),
               out: Path = typer.Option(Path("build/zk/ptau/local.ptau")), as_json: bool = JSON) -> None:
    """Make a powers-of-tau file here (INSECURE: for rehearsing a ceremony; production takes a public ptau)."""
    from zk.ceremony import local_ptau as make

    with failures():
        path = make(power, out)
        done(f"local (insecure) ptau at {path}", as_json, ptau=str(path))


@ceremony.command()
def start(project_file: Path = PROJECT, ptau: Path = typer.Option(..., help="Prepared phase-2 powers of tau."),
          as_json: bool = JSON) -> None:
    """Phase 2, step 0: the circuit's initial zkey (not yet usable: no contribution)."""
    from zk.ceremony import start as begin

    with failures():
        zkey = begin(_artifacts(project_file), ptau)
        done(f"ceremony started: {zkey}; now each party runs `fedmarket zk ceremony contribute`", as_json, zkey=str(zkey))


@ceremony.command()
def contribute(project_file: Path = PROJECT, name: str = typer.Option(..., help="Who contributes (recorded)."),
               as_json: bool = JSON) -> None:
    """Add one contribution (fresh randomness) on top of the latest zkey."""
    from zk.ceremony import contribute as add

    with failures():
        zkey = add(_artifacts(project_file), name)
        done(f"contribution of {name} written to {zkey}", as_json, zkey=str(zkey))


@ceremony.command()
def beacon(project_file: Path = PROJECT, hex_value: str = typer.Option(..., "--hex", help="Public randomness, e.g. a future block hash."),
           as_json: bool = JSON) -> None:
    """A final contribution from public randomness nobody could choose in advance."""
    from zk.ceremony import beacon as add

    with failures():
        zkey = add(_artifacts(project_file), hex_value.removeprefix("0x"))
        done(f"beacon applied: {zkey}", as_json, zkey=str(zkey))


@ceremony.command()
def finalize(project_file: Path = PROJECT, ptau: Path = typer.Option(..., help="The ptau the ceremony started from."),
             as_json: bool = JSON) -> None:
    """Verify the contribution chain and install the keys that `owner create` and the aggregator then use."""
    from zk.ceremony import finalize as close

    with failures():
        out = close(_artifacts(project_file), ptau)
        done(f"ceremony keys installed in {out}", as_json, artifacts=str(out))
