"""The aggregator node takes replays out (PROTOCOL.md §3), end to end: a real chain, real blobs, real proofs.

The attacker's test: an account that trains in round 1 and, in round 2, resubmits trainer 0's round-1 update with a
jitter of 1e-3 (a griefer: so that trainer 0's round-2 update, near its last, would come second and look like a copy).
The node finds it, challenges it on chain and proves the round with the slot absent: the replay earns nothing for
round 2, keeps its stake, trainer 0 is accepted and paid, and the audit re-derives both rounds from the chain alone.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from aggregator.node import AggregatorNode, Opened, RoundResult
from market.chain.client import Chain
from market.chain.marketplace import Marketplace, State
from market.dev.demo import DemoConfig, accounts, project_file
from market.ml.tasks import dirichlet_partition
from market.parties.audit import audit_project
from market.parties.context import load_context
from market.parties.owner import create_project, round_reports
from market.parties.trainer_node import TrainerNode
from market.storage import LocalStorage

pytestmark = [pytest.mark.slow, pytest.mark.anvil]


class Griefer(TrainerNode):
    """Trains in round 1; from round 2 resubmits `victim`'s update of the round before, jittered by 1e-3."""

    victim: TrainerNode

    def _make_update(self, round_: int, g_prev: torch.Tensor) -> torch.Tensor:
        if round_ == 1:
            return super()._make_update(round_, g_prev)
        source = self.victim._train(round_ - 1, self.ctx.global_model(round_ - 2))  # deterministic, as revealed
        noise = torch.randn(source.shape, generator=torch.Generator().manual_seed(round_))
        return source + 1e-3 * float(source.norm()) * noise / float(noise.norm())


def test_a_replay_is_taken_out_and_its_victim_paid(anvil_chain: Chain, tmp_path: Path) -> None:
    cfg = DemoConfig(trainers=4, attackers=0, rounds=2, withhold_round=0)
    owner, agg_acct, *trainer_accts = accounts(anvil_chain, cfg.trainers)
    market = Marketplace.deploy(anvil_chain, owner)
    storage = LocalStorage(tmp_path)
    pid = create_project(market, storage, project_file(cfg), owner, agg_acct.address).pid
    ctx = load_context(market, storage, pid)
    aggregator = AggregatorNode(ctx, agg_acct)
    market.bond(pid, agg_acct)
    parts = dirichlet_partition(ctx.task.train.y.numpy(), cfg.trainers, cfg.alpha, cfg.seed)
    trainers = [TrainerNode(ctx, acct, ctx.task.train.subset(parts[i]), decline_against=False)
                for i, acct in enumerate(trainer_accts[:3])]
    griefer = Griefer(ctx, trainer_accts[3], ctx.task.train.subset(parts[3]), decline_against=False)
    griefer.victim = trainers[0]
    everyone = [*trainers, griefer]
    for trainer in everyone:
        trainer.step()
    market.start(pid, owner)
    results = []
    for r in range(1, cfg.rounds + 1):
        assert isinstance(aggregator.step(), Opened)
        for _ in ("commit", "reveal"):
            for trainer in reversed(everyone):  # the griefer commits first
                trainer.step()
        if r == 2:  # the node's challenge lands before its post: the griefer's daemon, polling, sees it
            assert aggregator.challenge_replays(2, aggregator._verdicts(2)[1]) == {3: (1, 0)}
            assert str(griefer.step()) == "round 2: taken out as a replay of another trainer's update (UpdateReplayed)"
        done = aggregator.step()
        assert isinstance(done, RoundResult), done
        results.append(done)
    assert market.project(pid).state == State.FINISHED

    (event,) = market.events("UpdateReplayed", pid)
    assert (event.args["round"], event.args["slot"], event.args["sourceRound"], event.args["sourceSlot"]) == (2, 3, 1, 0)
    second = results[1]
    assert (second.flags[3], second.scores[3]) == (0, 0)  # absent: neither flagged nor paid
    assert second.flags[0] == 0 and second.scores[0] > 0  # the victim is accepted, not a copy, and paid
    assert "replays slot 0's update of round 1" in second.reasons[griefer.signer.address]
    assert round_reports(ctx)[1]["replayed"] == [griefer.signer.address]
    credited = {int(e.args["round"]): e for e in market.events("RoundPosted", pid)}
    assert set(credited) == {1, 2}
    audit = audit_project(ctx)
    assert not audit.findings, [f.detail for f in audit.findings]
    stake = market.project(pid).params.stake
    for trainer in everyone:
        trainer.step()  # claims, withdraws the whole stake (nobody was slashed)
    withdrawn = {e.args["trainer"]: int(e.args["amount"]) for e in market.events("StakeWithdrawn", pid)}
    assert withdrawn == {t.signer.address: stake for t in everyone}

