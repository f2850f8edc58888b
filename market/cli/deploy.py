"""`fedmarket deploy --rpc URL --keystore K`: the marketplace on any EVM chain, recorded in a deployment file."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from market.cli.output import console
from market.cli.session import session
from market.errors import ConfigError


def _render(data: dict[str, Any]) -> None:
    """The deployment as a table: chain, deployer, each contract's address and block (the transactions are in the file)."""
    table = Table(title=f"fedmarket deployed on chain {data['chain_id']}")
    for col in ("contract", "address", "block"):
        table.add_column(col)
    for name, entry in data["contracts"].items():
        table.add_row(name, entry["address"], str(entry["block"]))
    console.print(table)
    console.print(f"deployer {data['deployer']}; opcodes checked: {', '.join(data['opcodes'])}")
    console.print(f"wrote {data['file']}: pass it to every command as `fedmarket --deployment {data['file']} ...`")


def deploy_command(
    out: Path | None = typer.Option(None, "--out", help="Where to write the deployment file (default: ./deployment-CHAINID.json; "
                                    "never overwritten)."),
) -> None:
    """Deploy the marketplace (FedMarket, PoseidonCommit and its constant contracts) to the chain at --rpc, signed by
    --keystore, after checking the chain runs the opcodes they need; write the deployment file."""
    from market.chain.client import Chain
    from market.chain.deployment import deploy

    s = session()
    if not s.rpc:
        raise ConfigError("name the chain to deploy to: --rpc URL")
    chain = Chain.connect(s.rpc, accounts=[])
    out = out or Path(f"deployment-{chain.chain_id}.json")
    if out.exists():
        raise ConfigError(f"refusing to overwrite the deployment file at {out}: name another with --out")
    deployment = deploy(chain, s.signer, s.rpc)
    deployment.save(out)
    s.show({**asdict(deployment), "file": str(out)}, _render)

