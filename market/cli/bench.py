"""`fedmarket bench ...`: benchmarks that print figures and ratios measured in the same run."""

from __future__ import annotations

import typer

from market.cli.output import emit

app = typer.Typer(help="Benchmarks: gas, storage, aggregation, proving.", no_args_is_help=True)

JSON = typer.Option(False, "--json", help="Print one JSON object instead of a table.")


@app.command()
def gas(as_json: bool = JSON) -> None:
    """Gas used by each marketplace entry point, measured on anvil."""
    from market.dev.gasbench import run

    emit(run(), as_json, "gas used")


@app.command()
def storage(as_json: bool = JSON) -> None:
    """Add/get throughput of LocalStorage and the IPFS node; commitment hashing speed."""
    from market.storage.bench import run

    emit(run(), as_json, "storage")


@app.command()
def aggregate(as_json: bool = JSON) -> None:
    """Outlier rule + scores + average against a NumPy baseline and Flower's Krum."""
    from aggregator.eval.bench import run

    emit(run(), as_json, "aggregation")


@app.command()
def prove(
    budget: float = typer.Option(2400.0, help="Seconds to spend; the largest cases are skipped (and named) past it."),
    as_json: bool = JSON,
) -> None:
    """Constraints, witness and proving time, verification time and gas of round proofs."""
    from zk.bench import run

    emit(run(budget_s=budget), as_json, "round proofs")
