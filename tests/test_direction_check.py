"""A trainer checks the round's committed v before it submits (PROTOCOL §4, Trust model): an aimed v (-v, with the
aggregator's own account sign-flipping its update so that it alone is along it) never receives an honest trainer's
work, nor does a poisoned validation split (its true gradient, with own accounts trained to match it), since the
default node also keeps an update against v; an honest v goes on as before."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from aggregator.node import AggregatorNode, Opened, RoundResult
from market.chain.client import Chain
from market.chain.marketplace import Marketplace, State
from market.dev.demo import DemoConfig, accounts, project_file
from market.ml.attacks import label_flip
from market.ml.tasks import BUILTIN, Task, digits_task, dirichlet_partition
from market.parties.context import ProjectContext, load_context
from market.parties.owner import create_project, round_reports
from market.parties.trainer_node import Committed, TrainerNode
from market.storage import LocalStorage

pytestmark = [pytest.mark.slow, pytest.mark.anvil]

HONEST = 3


class NegatedDirection(AggregatorNode):
    """Commits to, and scores with, minus the validation direction: every check of the proof passes."""

    def direction(self, g_prev: torch.Tensor) -> torch.Tensor:
        return -super().direction(g_prev)


def play(chain: Chain, tmp_path: Path, node: type[AggregatorNode], honest: int = HONEST, own_attack: str = "sign_flip",
         rounds: int = 2) -> tuple[ProjectContext, list[TrainerNode], list[list[str]]]:
    """`rounds` rounds of a four-slot project: `honest` honest trainers (the default node), then the aggregator's own
    accounts (mounting `own_attack`, no check), aggregated by `node`; every node's step per round, as text."""
    cfg = DemoConfig(trainers=4, attackers=0, rounds=rounds, withhold_round=0)
    owner, agg_acct, *trainer_accts = accounts(chain, cfg.trainers)
    market = Marketplace.deploy(chain, owner)
    storage = LocalStorage(tmp_path)
    pid = create_project(market, storage, project_file(cfg), owner, agg_acct.address).pid
    ctx = load_context(market, storage, pid)
    aggregator = node(ctx, agg_acct)
    market.bond(pid, agg_acct)
    parts = dirichlet_partition(ctx.task.train.y.numpy(), cfg.trainers, cfg.alpha, cfg.seed)
    trainers = [TrainerNode(ctx, acct, ctx.task.train.subset(parts[i]), attack=None if i < honest else own_attack)
                for i, acct in enumerate(trainer_accts)]
    for own in trainers[honest:]:
        own.check_direction = False  # the coalition's accounts submit along the v they know
    for trainer in trainers:
        trainer.step()
    market.start(pid, owner)
    steps = []
    for _ in range(cfg.rounds):
        assert isinstance(aggregator.step(), Opened)
        sealed = [t.step() for t in trainers]  # the commits (or declines), then the reveals: PROTOCOL §3
        revealed = [t.step() for t in trainers]
        steps.append([str(b if isinstance(a, Committed) else a) for a, b in zip(sealed, revealed)])
        done = aggregator.step()  # a trainer that declined said so on chain: the round need not wait for its deadline
        assert isinstance(done, RoundResult), done
    assert market.project(pid).state == State.FINISHED
    for trainer in trainers:
        trainer.step()  # settles: claims rewards, withdraws the stake
    return ctx, trainers, steps


def assert_no_honest_work_taken(ctx: ProjectContext, trainers: list[TrainerNode], honest: int, rounds: int) -> None:
    """The honest trainers committed nothing in any round (each declined it on chain), earned nothing and withdrew
    their whole stake."""
    market, pid = ctx.market, ctx.pid
    history = round_reports(ctx)  # what `owner status` shows: the owner sees who refused its rounds
    for r in range(1, rounds + 1):
        assert [c != 0 for c in market.round_state(pid, r).commitments][:honest] == [False] * honest
        assert market.declined_slots(pid, r) == set(range(honest))
        assert history[r - 1]["declined"] == [t.signer.address for t in trainers[:honest]]
    addresses = {t.signer.address for t in trainers[:honest]}
    assert not [e for e in market.events("UpdateCommitted", pid) if e.args["trainer"] in addresses]
    stake = market.project(pid).params.stake
    for t in trainers[:honest]:
        p = market.participant(pid, t.signer.address)
        assert (p.stake, p.rewards) == (0, 0)
        withdrawn = [e for e in market.events("StakeWithdrawn", pid) if e.args["trainer"] == t.signer.address]
        assert [int(e.args["amount"]) for e in withdrawn] == [stake]


def test_an_aimed_direction_receives_no_honest_update(anvil_chain: Chain, tmp_path: Path) -> None:
    ctx, trainers, steps = play(anvil_chain, tmp_path, NegatedDirection)
    for r, row in enumerate(steps, start=1):
        for text in row[:HONEST]:  # each honest trainer said why
            assert text.startswith(f"round {r}: declined, the committed v and h are not the validation direction"), text
        assert row[HONEST].startswith(f"round {r}: submitted"), row[HONEST]
    assert_no_honest_work_taken(ctx, trainers, HONEST, rounds=2)


class AimedSplit(AggregatorNode):
    """Commits to the honest v but another split step h (here v itself): the circuit takes any h, so only the
    trainers' check stands between an aggregator that aims h at an update it wants called public and their work."""

    def split(self, g_prev: torch.Tensor) -> torch.Tensor:
        return super().direction(g_prev)


def test_an_aimed_split_step_receives_no_honest_update(anvil_chain: Chain, tmp_path: Path) -> None:
    ctx, trainers, steps = play(anvil_chain, tmp_path, AimedSplit, rounds=1)
    for text in steps[0][:HONEST]:
        assert text.startswith("round 1: declined, the committed v and h are not the validation direction"), text
    assert steps[0][HONEST].startswith("round 1: submitted"), steps[0][HONEST]
    assert_no_honest_work_taken(ctx, trainers, HONEST, rounds=1)


def poisoned_digits() -> Task:
    """digits-softmax whose published validation split has its labels flipped (c -> 9 - c): an owner's choice that
    the spec hash records, so v is that split's true gradient and passes every check of v itself."""
    task = digits_task("softmax")
    return dataclasses.replace(task, val=label_flip(task.val, task.num_classes),
                               definition={**task.definition, "validation_labels": "flipped"})


def test_a_poisoned_validation_split_receives_no_honest_update(anvil_chain: Chain, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # The owner publishes a validation split with flipped labels; its two own accounts train on flipped labels too,
    # so they alone are along the (honestly computed) v, and with two accepted of four the few-accepted split of §7
    # does not apply: the honest updates would be excluded and unpaid, their blobs with the owner. The default node
    # keeps an update against v (decline_against), so it keeps its blob.
    monkeypatch.setitem(BUILTIN, "digits-softmax", poisoned_digits)
    ctx, trainers, steps = play(anvil_chain, tmp_path, AggregatorNode, honest=2, own_attack="label_flip", rounds=1)
    for r, row in enumerate(steps, start=1):
        for text in row[:2]:
            assert text.startswith(f"round {r}: declined, its update is against v"), text
        assert all(text.startswith(f"round {r}: submitted") for text in row[2:]), row
    assert_no_honest_work_taken(ctx, trainers, 2, rounds=1)


def test_an_honest_direction_is_checked_and_only_updates_against_it_are_kept(anvil_chain: Chain, tmp_path: Path) -> None:
    # Non-IID data can put an honest update against an honest v (the direction test would exclude it unpaid): the
    # default node keeps that one. Every other honest update is submitted, and none is held back over v itself.
    ctx, trainers, steps = play(anvil_chain, tmp_path, AggregatorNode)
    for r, row in enumerate(steps, start=1):
        kept = [i for i, text in enumerate(row[:HONEST]) if not text.startswith(f"round {r}: submitted")]
        assert all(row[i].startswith(f"round {r}: declined, its update is against v (<v, u> = ") for i in kept), row
        assert len(kept) < HONEST and row[HONEST].startswith(f"round {r}: submitted"), row
        submitted = {int(e.args["slot"]) for e in ctx.market.events("UpdateSubmitted", ctx.pid, round_=r)}
        assert submitted == {i for i in range(len(trainers)) if i not in kept}
    assert all(set(t.directions) == {1, 2} and all(v is not None for v in t.directions.values()) for t in trainers[:HONEST])
