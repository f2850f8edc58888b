"""The daemon loops on a real chain and store: a deterministic revert stops the aggregator at once with
the decoded error, a transient error is retried, and the trainer rides out one race but not a revert
that would repeat forever."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from eth_account.signers.local import LocalAccount

from aggregator.node import AggregatorNode, Step
from market.chain.client import Chain
from market.chain.marketplace import Marketplace, State, artifacts
from market.errors import ConfigError, ContractRevert
from market.parties.context import ProjectContext, load_context
from market.parties.owner import create_project, project_status
from market.parties.project_file import load_project_file
from market.parties.trainer_node import Committed, Submitted, TrainerNode, Waiting
from market.parties.trainer_node import Step as TrainerStep
from market.storage import IpfsStorage, LocalStorage, cid_to_bytes
from tests.test_product import EXAMPLE

POLL_S = 0.01


class Stop(Exception):
    """Raised from a test's log callback to end a daemon loop that would otherwise wait for more rounds."""


class CountingAggregator(AggregatorNode):
    """The aggregator node, counting its steps."""

    steps = 0

    def step(self) -> Step:
        """AggregatorNode.step, counted."""
        self.steps += 1
        return super().step()


class CountingTrainer(TrainerNode):
    """The trainer node, counting its steps."""

    steps = 0

    def step(self) -> TrainerStep:
        """TrainerNode.step, counted."""
        self.steps += 1
        return super().step()


class SlowTrainer(CountingTrainer):
    """A trainer so slow that the round's submission window closes while it trains."""

    def update(self, round_: int, g_prev: torch.Tensor) -> torch.Tensor:
        """TrainerNode.update, after which the chain's clock has passed the commit deadline (the node asks for
        its update twice when it also checks it against v: the clock moves once)."""
        out = super().update(round_, g_prev)
        chain = self.ctx.market.chain
        deadline = self.ctx.market.project(self.ctx.pid).deadline
        if chain.now() <= deadline:
            chain.time_travel(deadline - chain.now() + 1)
        return out


def example_project(chain: Chain, store: Path, joined: int = 4, start: bool = True) -> ProjectContext:
    """The example project (4 slots) on a fresh marketplace, bonded by account 1, `joined` trainers
    (accounts 2..) in, started if `start`; its RoundVerifier fits it but is never asked to verify."""
    owner, aggregator = chain.accounts[0], chain.accounts[1]
    market = Marketplace.deploy(chain, owner)
    pf = load_project_file(EXAMPLE)
    rule = pf.manifest.rule
    circuit = [pf.max_trainers, pf.manifest.view[1], pf.manifest.quant.bits, rule.f, rule.m, rule.tau_pct,
               rule.dup_pct, rule.floor_pct]
    verifier = chain.deploy(artifacts()["RoundVerifier"], owner.address, circuit, sender=owner)
    storage = LocalStorage(store)
    pid = create_project(market, storage, pf, owner, aggregator.address, verifier=verifier.address).pid
    market.bond(pid, aggregator)
    for trainer in chain.accounts[2 : 2 + joined]:
        market.join(pid, trainer)
    if start:
        market.start(pid, owner)
    return load_context(market, storage, pid)


def aggregator(ctx: ProjectContext, signer: LocalAccount, tmp_path: Path) -> CountingAggregator:
    """An aggregator node that never proves here (snarkjs backend: no proving key is loaded)."""
    return CountingAggregator(ctx, signer, circuit_dir=tmp_path / "circuit", backend="snarkjs")


def test_an_aggregator_node_with_another_key_is_refused_before_it_waits(tmp_path: Path) -> None:
    """A daemon started with a key that is not the project's aggregator says so at once; it used to wait for the
    project to start and then stop on openRound's NotAggregator revert, hours later on a real project."""
    chain = Chain.in_process()
    ctx = example_project(chain, tmp_path / "store", start=False)
    signer = chain.accounts[7]
    with pytest.raises(ConfigError) as info:
        aggregator(ctx, signer, tmp_path)
    assert str(info.value).startswith(f"{signer.address} is not project {ctx.pid}'s aggregator ({chain.accounts[1].address})")
    assert ctx.market.project(ctx.pid).state == State.OPEN


def test_aggregator_stops_at_once_on_a_revert(tmp_path: Path) -> None:
    chain = Chain.in_process()
    ctx = example_project(chain, tmp_path / "store")
    chain.time_travel(ctx.market.project(ctx.pid).deadline - chain.now() + 1)  # the open window passes first
    node, lines = aggregator(ctx, chain.accounts[1], tmp_path), list[str]()
    with pytest.raises(ContractRevert) as info:
        node.run(poll_s=60.0, log=lines.append)  # a retry would sleep a minute first
    assert node.steps == 1 and lines == []
    err, project = info.value, ctx.market.project(ctx.pid)
    assert err.name == "DeadlinePassed" and err.args_by_name["pid"] == ctx.pid
    now_ts = err.args_by_name["nowTs"]
    assert err.args_by_name["deadline"] == project.deadline and isinstance(now_ts, int) and now_ts > project.deadline
    assert str(err).startswith(f"DeadlinePassed(pid={ctx.pid}, deadline={project.deadline}, nowTs=")
    assert project.state == State.TRAINING and not project.round_open


def test_aggregator_retries_a_transient_error(tmp_path: Path) -> None:
    chain = Chain.in_process()
    ctx = example_project(chain, tmp_path / "store")
    down = IpfsStorage("/ip4/127.0.0.1/tcp/9/http", timeout=1)  # nothing listens: NodeUnreachable
    node, lines = aggregator(dataclasses.replace(ctx, storage=down), chain.accounts[1], tmp_path), list[str]()

    def log(line: str) -> None:
        lines.append(line)
        if len(lines) == 1:
            node.ctx = ctx  # the storage node is back
        if line.endswith("opened"):
            raise Stop

    with pytest.raises(Stop):
        node.run(poll_s=POLL_S, log=log)
    assert lines[0].startswith("waiting after an error (NodeUnreachable: ")
    assert lines[1:] == ["round 1: opened"] and node.steps == 2
    assert ctx.market.project(ctx.pid).round_open


def test_trainer_stops_on_a_revert_that_would_repeat(tmp_path: Path) -> None:
    chain = Chain.in_process()
    ctx = example_project(chain, tmp_path / "store", start=False)  # 4 of 4 slots taken
    node, lines = CountingTrainer(ctx, chain.accounts[6], ctx.task.train), list[str]()
    with pytest.raises(ContractRevert) as info:
        node.run(poll_s=POLL_S, log=lines.append)
    assert str(info.value) == f"ProjectFull(pid={ctx.pid}, maxTrainers=4)"
    assert node.steps == 2 and lines == [f"refused, looking again: ProjectFull(pid={ctx.pid}, maxTrainers=4)"]


def test_a_trainer_node_that_never_joined_a_started_project_says_so(tmp_path: Path) -> None:
    """`trainer run` with a key that did not join, once training started: a named error, where it used to find
    nothing to do and exit 0 without a word."""
    chain = Chain.in_process()
    ctx = example_project(chain, tmp_path / "store")
    outsider = chain.accounts[6]
    node, lines = CountingTrainer(ctx, outsider, ctx.task.train), list[str]()
    with pytest.raises(ConfigError, match=f"{outsider.address} is not a trainer of project {ctx.pid}, and joining "
                                          "closed when it left Open \\(it is Training now\\)"):
        node.run(poll_s=POLL_S, log=lines.append)
    assert lines == []


def test_trainer_rides_out_a_window_that_closed_while_it_trained(tmp_path: Path) -> None:
    chain = Chain.in_process()
    ctx = example_project(chain, tmp_path / "store")
    assert str(aggregator(ctx, chain.accounts[1], tmp_path).step()) == "round 1: opened"
    trainer = chain.accounts[2]
    node, lines = SlowTrainer(ctx, trainer, ctx.task.train.subset(np.arange(64))), list[str]()

    def log(line: str) -> None:
        lines.append(line)
        if line.startswith("refused"):  # the aggregator then misses its post deadline too: the project ends
            chain.time_travel(ctx.params.submit_window + ctx.params.post_window + 1)  # the reveals, then the post
            ctx.market.timeout(ctx.pid, chain.accounts[0])

    node.run(poll_s=POLL_S, log=log)
    assert lines[0].startswith(f"refused, looking again: WindowClosed(pid={ctx.pid}, windowEnd=")
    assert lines[1:] == [f"withdrew stake {ctx.params.stake}"] and node.steps == 2
    assert ctx.market.project(ctx.pid).state == State.CANCELLED
    assert ctx.market.participant(ctx.pid, trainer.address).stake == 0


class SealedRoundStorage(LocalStorage):
    """Local storage that refuses a blob while the open round's commits are still open (PROTOCOL.md §3)."""

    def __init__(self, root: Path, ctx: ProjectContext) -> None:
        super().__init__(root)
        self.ctx = ctx

    def add(self, data: bytes) -> str:
        """LocalStorage.add, once the open round takes reveals."""
        m, pid = self.ctx.market, self.ctx.pid
        assert m.reveals_open(pid, m.project(pid).round), "blob public before every commit was in"
        return super().add(data)


def test_trainer_uploads_once_every_commit_is_in_and_reveals_after_a_restart(tmp_path: Path) -> None:
    chain = Chain.in_process()
    ctx = example_project(chain, tmp_path / "store")
    assert str(aggregator(ctx, chain.accounts[1], tmp_path).step()) == "round 1: opened"
    m, pid, data = ctx.market, ctx.pid, ctx.task.train.subset(np.arange(64))
    status = project_status(m, ctx.storage, pid, ctx)  # what `owner status --json` prints of the round's windows
    assert status["reveal_deadline"] == status["deadline"] + ctx.params.submit_window < status["post_deadline"]
    # A node that dies right after its commit: the blob was never uploaded nor revealed.
    crashed, trainer = TrainerNode(ctx, chain.accounts[2], data), chain.accounts[2]
    made = crashed.sealed_update(1)
    assert made is not None
    _, cid, commitment = made
    m.commit_update(pid, 1, m.seal(pid, 1, trainer.address, cid_to_bytes(cid), commitment, crashed.salt(1)), trainer)
    assert m.round_state(pid, 1).commitments[0] == 0
    checked = dataclasses.replace(ctx, storage=SealedRoundStorage(tmp_path / "store", ctx))
    restarted = TrainerNode(checked, trainer, data)
    assert isinstance(restarted.step(), Waiting)  # the other slots may still commit: nothing is uploaded yet
    # The other trainers seal; the last commit opens the reveals (the storage checks it for each upload).
    others = [TrainerNode(checked, acct, data) for acct in chain.accounts[3:6]]
    for node in others:
        assert not m.reveals_open(pid, 1) and isinstance(node.step(), Committed)
    assert m.reveals_open(pid, 1)
    assert restarted.step() == Submitted(1, cid)
    assert m.round_state(pid, 1).commitments[0] == commitment
    assert isinstance(restarted.step(), Waiting)
    assert all(isinstance(node.step(), Submitted) for node in others) and all(m.round_state(pid, 1).commitments)
    assert m.submission_order(pid, 1) == [0, 1, 2, 3]
