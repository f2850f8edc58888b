"""`fedmarket trainer ...`: join, train every round, follow, claim and withdraw."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from market.cli.output import console
from market.cli.session import CHAIN, JSON, SIGNER, command, session
from market.errors import ConfigError
from market.ml.attacks import SOLO_ATTACKS

if TYPE_CHECKING:
    from market.ml.tasks import Split
    from market.parties.context import ProjectContext
    from zk.keycheck import VerifierCheck

app = typer.Typer(help="A trainer: join with a stake, train and submit each round, claim and withdraw.", no_args_is_help=True)

ACCEPT_INSECURE_KEYS = typer.Option(
    False, "--accept-insecure-keys",
    help="Join even when the project's verifier uses development keys, whose maker can forge proofs, on a chain that "
         "may hold value (any but 31337 and 1337).")


def _check_verifier(ctx: ProjectContext, accept_insecure_keys: bool) -> VerifierCheck:
    """Refuse to stake on a project whose verifier is not the one its settings and the keys installed here make,
    or whose keys are development keys on a chain that may hold value (zk.keycheck, issue 12)."""
    from market.parties.context import circuit_params
    from zk.keycheck import check_project_verifier

    return check_project_verifier(ctx.market.chain, ctx.params.verifier, circuit_params(ctx), accept_insecure_keys)


def _data(ctx: ProjectContext, data: Path | None, partition: str) -> Split:
    """The trainer's private data: a file checked against the project's schema and preprocessed as its manifest says
    (DataMismatch before anything is staked or sent), or a Dirichlet share of the built-in task (simulation)."""
    from market.ml.tasks import dirichlet_partition
    from market.ml.tasks.owndata import load_task_data

    if data is not None and partition:
        raise ConfigError("give one source of training data: --data FILE or --partition I/N, not both")
    if data is None and not partition:
        raise ConfigError("name the training data: --data FILE (.npz, .csv, image folder) or --partition I/N")
    if data is not None:
        return load_task_data(ctx.task, data)
    if ctx.task.schema is not None:
        raise ConfigError(f"project {ctx.pid} trains on the trainers' own data: --partition is for the built-in tasks, "
                          "give --data FILE")
    try:
        i, n = (int(p) for p in partition.split("/"))
    except ValueError:
        raise ConfigError(f"--partition takes I/N, got {partition!r}") from None
    if not 0 <= i < n:
        raise ConfigError(f"--partition {partition}: I must be in 0..N-1")
    parts = dirichlet_partition(ctx.task.train.y.numpy(), n, 0.5, 0)
    return ctx.task.train.subset(parts[i])


@command(app, *CHAIN, *SIGNER, JSON)
def join(
    pid: int,
    data: Path | None = typer.Option(None, help="Check that this training data fits the project's schema before staking."),
    accept_insecure_keys: bool = ACCEPT_INSECURE_KEYS,
) -> None:
    """Join an Open project with its stake, once its verifier matches the keys installed here for its settings (and,
    with --data, once the data fits the project's schema)."""
    from market.dev.report import ether
    from market.parties.context import load_context

    s = session()
    ctx = load_context(s.marketplace, s.storage, pid)
    if data is not None:
        _data(ctx, data, "")
    checked = _check_verifier(ctx, accept_insecure_keys)
    s.marketplace.join(pid, s.signer)
    part = s.marketplace.participant(pid, s.signer.address)
    keys = f"{'development' if checked.insecure else 'ceremony'} keys in {checked.keys}"
    s.show({"pid": pid, "slot": part.slot, "stake": part.stake, "keys": str(checked.keys), "insecure_keys": checked.insecure},
           f"joined project {pid} in slot {part.slot} with stake {ether(part.stake)}; its verifier matches the {keys}")


@command(app, *CHAIN, *SIGNER)
def run(
    pid: int,
    data: Path | None = typer.Option(None, help="Private training data: .npz, .csv or an image folder."),
    partition: str = typer.Option("", help="Simulation: train on share I of N of the built-in task (I/N)."),
    attack: str = typer.Option("", help=f"Evaluation only: mount this attack ({', '.join(SOLO_ATTACKS)})."),
    withhold: list[int] = typer.Option([], help="Evaluation only: reveal but never upload the blob in this round "
                                                "(rejected, then cured on chain in the dispute window)."),
    poll: float = typer.Option(1.0, help="Seconds between looks at the chain."),
    flower_client: str = typer.Option("", help="Train with this Flower NumPyClient (module:attr, an instance or a "
                                               "zero-argument factory; importable from the working directory)."),
    check_direction: bool = typer.Option(True, help="Before each submission, recompute the round's v on the "
                                                    "published validation split and decline a round whose committed "
                                                    "v is another (PROTOCOL §4)."),
    decline_against: bool = typer.Option(True, help="Also keep an update that is against v (the direction test "
                                                    "would exclude it unpaid), so that a poisoned validation split "
                                                    "never gets its blob (PROTOCOL §4)."),
    accept_insecure_keys: bool = ACCEPT_INSECURE_KEYS,
) -> None:
    """Join (once the project's verifier is checked as `join` does), train and submit in every round until the
    project ends, then claim and withdraw (resumes after a restart). A round whose committed v is not the validation
    direction recomputed here gets no update.
    With --flower-client, each round the client's fit gets the global model and the project's hyper-parameters, and
    its parameters minus the model are the update."""
    from market.chain.marketplace import Status
    from market.parties.audit import validation_published
    from market.parties.context import load_context
    from market.parties.trainer_node import TrainerNode

    s = session()
    ctx = load_context(s.marketplace, s.storage, pid)
    if check_direction and not validation_published(ctx):
        console.print(f"project {pid}'s task here is not the manifest's (spec hash differs): its v cannot be "
                      "recomputed, so rounds are submitted unchecked")
    if s.marketplace.participant(pid, s.signer.address).status == Status.NONE:  # the node will join
        _check_verifier(ctx, accept_insecure_keys)
    flower = None
    if flower_client:
        from market.ml.flower import FlowerTrainer, load_client

        flower = FlowerTrainer(load_client(flower_client), ctx.layout, f"Flower client {flower_client}")
    node = TrainerNode(ctx, s.signer, _data(ctx, data, partition), attack=attack or None, withhold=frozenset(withhold),
                       flower=flower, check_direction=check_direction,
                       decline_against=None if attack else decline_against)  # an attack node's own default
    node.run(poll_s=poll, log=lambda line: console.print(f"[dim]{node.signer.address[:10]}[/dim] {line}"))


def _render_status(d: dict[str, Any]) -> None:
    """A trainer's standing, then its rounds as a table."""
    from market.dev.report import ether

    if d["status"] == "NONE":  # its slot would read 0, another trainer's
        console.print(f"{d['trainer']} has not joined project {d['project']}: `fedmarket trainer join PID` while it is Open")
        return
    console.print(f"project {d['project']}, trainer {d['trainer']}: {d['status']}, slot {d['slot']}, "
                  f"stake {ether(d['stake'])}, rewards {ether(d['rewards'])}")
    table = Table(title="rounds")
    for col in ("round", "flag", "score", "reason"):
        table.add_column(col)
    for h in d["history"]:
        table.add_row(str(h["round"]), str(h["flag"]), str(h["score"]), h["reason"])
    console.print(table)


@command(app, *CHAIN, *SIGNER, JSON)
def status(pid: int) -> None:
    """This trainer's slot, stake, rewards and its flags and scores in every posted round."""
    from market.parties.context import load_context
    from market.parties.owner import round_reports

    s = session()
    market = s.marketplace
    me = s.signer.address
    part = market.participant(pid, me)
    history = [{"round": r["round"], "flag": r["flags"].get(me), "score": r["scores"].get(me),
                "reason": r["reasons"].get(me, "")} for r in round_reports(load_context(market, s.storage, pid))]
    s.show({"project": pid, "trainer": me, "status": part.status.name, "slot": part.slot,
            "stake": part.stake, "rewards": part.rewards, "history": history}, _render_status)


@command(app, *CHAIN, *SIGNER, JSON)
def claim(pid: int) -> None:
    """Withdraw credited rewards."""
    from market.dev.report import ether

    s = session()
    amount = s.marketplace.participant(pid, s.signer.address).rewards
    s.marketplace.claim(pid, s.signer)
    s.show({"pid": pid, "amount": amount}, f"claimed {ether(amount)}")


@command(app, *CHAIN, *SIGNER, JSON)
def withdraw(pid: int) -> None:
    """Withdraw what is left of the stake (after the project ends, or once ejected)."""
    from market.dev.report import ether

    s = session()
    amount = s.marketplace.participant(pid, s.signer.address).stake
    s.marketplace.withdraw_stake(pid, s.signer)
    s.show({"pid": pid, "amount": amount}, f"withdrew stake {ether(amount)}")
