"""`fedmarket trainer ...`: join, train every round, follow, claim and withdraw."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from market.cli.common import DEV_ACCOUNT, IPFS, JSON, KEYSTORE, MARKET, RPC, connect, done, endpoint, failures, show, signer
from market.cli.output import console
from market.errors import ConfigError

app = typer.Typer(help="A trainer: join with a stake, train and submit each round, claim and withdraw.", no_args_is_help=True)
ETHER = 10**18


def _data(ctx, data: Path | None, partition: str):  # noqa: ANN001, ANN202 - ProjectContext -> Split
    """The trainer's private data: a file, or a Dirichlet share of the built-in task (simulation)."""
    import torch

    from market.ml.tasks import Split, dirichlet_partition
    from market.ml.tasks.loaders import load_data

    if (data is None) == (not partition):
        raise ConfigError("name the training data: --data FILE (.npz, .csv, image folder) or --partition I/N")
    if data is not None:
        x, y = load_data(data)
        return Split(torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long))
    try:
        i, n = (int(p) for p in partition.split("/"))
    except ValueError:
        raise ConfigError(f"--partition takes I/N, got {partition!r}") from None
    if not 0 <= i < n:
        raise ConfigError(f"--partition {partition}: I must be in 0..N-1")
    parts = dirichlet_partition(ctx.task.train.y.numpy(), n, 0.5, 0)
    return ctx.task.train.subset(parts[i])


@app.command()
def join(pid: int, keystore: Path | None = KEYSTORE, dev_account: int | None = DEV_ACCOUNT,
         rpc: str = RPC, ipfs: str = IPFS, market: str = MARKET, as_json: bool = JSON) -> None:
    """Join an Open project with its stake."""
    with failures():
        mk, _ = connect(endpoint(rpc, ipfs, market))
        me = signer(keystore, dev_account)
        mk.join(pid, me)
        part = mk.participant(pid, me.address)
        done(f"joined project {pid} in slot {part.slot} with stake {part.stake / ETHER:.6f}", as_json,
             pid=pid, slot=part.slot, stake=part.stake)


@app.command()
def run(
    pid: int,
    data: Path | None = typer.Option(None, help="Private training data: .npz, .csv or an image folder."),
    partition: str = typer.Option("", help="Simulation: train on share I of N of the built-in task (I/N)."),
    attack: str = typer.Option("", help="Evaluation only: mount this attack (sign_flip, scaling, gaussian, label_flip, free_rider_zero, free_rider_copy)."),
    poll: float = typer.Option(1.0, help="Seconds between looks at the chain."),
    keystore: Path | None = KEYSTORE, dev_account: int | None = DEV_ACCOUNT,
    rpc: str = RPC, ipfs: str = IPFS, market: str = MARKET,
) -> None:
    """Train and submit in every round until the project ends, then claim and withdraw (resumes after a restart)."""
    from market.parties.context import load_context
    from market.parties.trainer_node import TrainerNode

    with failures():
        mk, storage = connect(endpoint(rpc, ipfs, market))
        ctx = load_context(mk, storage, pid)
        node = TrainerNode(ctx, signer(keystore, dev_account), _data(ctx, data, partition), attack=attack or None)
        node.run(poll_s=poll, log=lambda line: console.print(f"[dim]{node.signer.address[:10]}[/dim] {line}"))


@app.command()
def status(pid: int, keystore: Path | None = KEYSTORE, dev_account: int | None = DEV_ACCOUNT,
           rpc: str = RPC, ipfs: str = IPFS, market: str = MARKET, as_json: bool = JSON) -> None:
    """This trainer's slot, stake, rewards and its flags and scores in every posted round."""
    from market.parties.context import load_context
    from market.parties.owner import round_reports

    with failures():
        mk, storage = connect(endpoint(rpc, ipfs, market))
        me = signer(keystore, dev_account).address
        part = mk.participant(pid, me)
        history = [{"round": r["round"], "flag": r["flags"].get(me), "score": r["scores"].get(me),
                    "reason": r["reasons"].get(me, "")} for r in round_reports(load_context(mk, storage, pid))]
        data = {"project": pid, "trainer": me, "status": part.status.name, "slot": part.slot,
                "stake": part.stake, "rewards": part.rewards, "history": history}

        def render(d: dict) -> None:
            console.print(f"project {pid}, trainer {me}: {d['status']}, slot {d['slot']}, "
                          f"stake {d['stake'] / ETHER:.6f}, rewards {d['rewards'] / ETHER:.6f}")
            table = Table(title="rounds")
            for col in ("round", "flag", "score", "reason"):
                table.add_column(col)
            for h in d["history"]:
                table.add_row(str(h["round"]), str(h["flag"]), str(h["score"]), h["reason"])
            console.print(table)

        show(data, as_json, render)


@app.command()
def claim(pid: int, keystore: Path | None = KEYSTORE, dev_account: int | None = DEV_ACCOUNT,
          rpc: str = RPC, ipfs: str = IPFS, market: str = MARKET, as_json: bool = JSON) -> None:
    """Withdraw credited rewards."""
    with failures():
        mk, _ = connect(endpoint(rpc, ipfs, market))
        me = signer(keystore, dev_account)
        amount = mk.participant(pid, me.address).rewards
        mk.claim(pid, me)
        done(f"claimed {amount / ETHER:.6f}", as_json, pid=pid, amount=amount)


@app.command()
def withdraw(pid: int, keystore: Path | None = KEYSTORE, dev_account: int | None = DEV_ACCOUNT,
             rpc: str = RPC, ipfs: str = IPFS, market: str = MARKET, as_json: bool = JSON) -> None:
    """Withdraw what is left of the stake (after the project ends, or once ejected)."""
    with failures():
        mk, _ = connect(endpoint(rpc, ipfs, market))
        me = signer(keystore, dev_account)
        amount = mk.participant(pid, me.address).stake
        mk.withdraw_stake(pid, me)
        done(f"withdrew stake {amount / ETHER:.6f}", as_json, pid=pid, amount=amount)
