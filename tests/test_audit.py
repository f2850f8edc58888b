"""`fedmarket audit`: every round of a real project re-derived from the chain and storage alone, and the
dishonest posts it must catch (a g(r) changed outside the proof view, a round posted with -v)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from aggregator.node import AggregatorNode, Opened, RoundResult
from market.chain.client import Chain
from market.chain.marketplace import MarketEvent, Marketplace
from market.dev.demo import DemoConfig, accounts, project_file
from market.errors import AuditMismatch, FedMarketError, InvalidBlob
from market.ml.tasks import dirichlet_partition, layout
from market.ml.tasks.digits import small_mlp
from market.parties.audit import RoundRecord, audit_project, describe_difference, parameter_name
from market.parties.context import ProjectContext, load_context
from market.parties.owner import create_project
from market.parties.trainer_node import TrainerNode
from market.protocol.modelblob import decode_model, encode_model
from market.storage import IpfsStorage, LocalStorage, Storage
from market.toolchain.anvil import AnvilHandle
from market.toolchain.ipfs_node import NodeHandle

#: The parameter the dishonest aggregator changes in g(1): digits-mlp's first weight, outside its proof view (the head).
TAMPERED = 0


def event(name: str, block: int, tx: str, **args: object) -> MarketEvent:
    """A marketplace event as the chain wrapper decodes it."""
    return MarketEvent(name, dict(args), block, tx, 0)


def test_a_finding_names_its_round_slot_and_field() -> None:
    err = AuditMismatch(2, 1, "score", "posted 5, recomputed 6")
    assert isinstance(err, FedMarketError)
    assert str(err) == "round 2, slot 1, field score: posted 5, recomputed 6"
    assert (err.round, err.slot, err.field) == (2, 1, "score")
    assert str(AuditMismatch(3, None, "model", "differs")) == "round 3, field model: differs"


def test_parameters_are_named_by_the_layout() -> None:
    slots = layout(small_mlp())
    assert [parameter_name(slots, i) for i in (0, 65, 2048, 2409)] == ["0.weight[0, 0]", "0.weight[1, 1]", "0.bias[0]", "2.bias[9]"]


def test_a_negated_direction_is_described_as_such() -> None:
    v = torch.tensor([3, -7, 0, 32767])
    assert describe_difference(v, -v) == "the revealed v is minus it"
    assert describe_difference(v, torch.tensor([3, -7, 2, 32767])) == "1 of 4 values differ from the revealed v (at most by 2)"


def test_the_settling_post_is_the_re_post_after_a_cure() -> None:
    opened = event("RoundOpened", 1, "0x01", round=1, vCommit=5)
    provisional, repost = event("RoundPosted", 4, "0x04", round=1), event("RoundPosted", 8, "0x08", round=1)
    cure = event("UpdateCured", 6, "0x06", round=1, slot=2)
    cured = RoundRecord(opened, {}, [provisional, repost], frozenset({"0x04"}), [cure], finalized=False)
    assert cured.settling is repost and cured.settled and cured.cured == [2]
    waiting = RoundRecord(opened, {}, [provisional], frozenset({"0x04"}), [cure], finalized=False)
    assert waiting.settling is provisional and not waiting.settled and waiting.cured == []
    final = RoundRecord(opened, {}, [provisional], frozenset({"0x04"}), [], finalized=True)
    assert final.settled and final.cured == []


class NegatedDirection(AggregatorNode):
    """An aggregator that commits to, and scores with, minus the validation direction: every range and
    normalisation check passes, so only a recomputation of v tells it apart (issue 12)."""

    def direction(self, g_prev: torch.Tensor) -> torch.Tensor:
        return -super().direction(g_prev)


class TamperingStorage(LocalStorage):
    """What a dishonest aggregator uploads: g(1) with one parameter outside the proof view changed; every other
    blob as it is. It writes into the same store everyone reads."""

    def add(self, data: bytes) -> str:
        try:
            blob = decode_model(data, sum(p.length for p in layout(small_mlp())))
        except InvalidBlob:
            return super().add(data)
        if blob.round == 1:
            weights = blob.weights.clone()
            weights[TAMPERED] += 0.25
            data = encode_model(weights, blob.project_id, blob.round, blob.spec_hash, blob.report)
        return super().add(data)


def run_project(chain: Chain, storage: Storage, task: str, node: type[AggregatorNode] = AggregatorNode,
                aggregator_storage: Storage | None = None) -> ProjectContext:
    """Two rounds of a 4-trainer project on a real chain, proven and posted by `node` (which uploads through
    `aggregator_storage`, by default `storage`); the context everyone else reads it through. Its trainers neither
    check v nor keep an update against it (tests/test_direction_check.py does both), so that a dishonest post has
    rounds to audit."""
    cfg = DemoConfig(trainers=4, attackers=0, rounds=2, task=task, withhold_round=0)
    owner, agg_acct, *trainer_accts = accounts(chain, cfg.trainers)
    market = Marketplace.deploy(chain, owner)
    pid = create_project(market, storage, project_file(cfg), owner, agg_acct.address).pid
    ctx = load_context(market, storage, pid)
    aggregator = node(dataclasses.replace(ctx, storage=aggregator_storage or storage), agg_acct)
    market.bond(pid, agg_acct)
    parts = dirichlet_partition(ctx.task.train.y.numpy(), cfg.trainers, cfg.alpha, cfg.seed)
    trainers = [TrainerNode(ctx, acct, ctx.task.train.subset(parts[i]), check_direction=False, decline_against=False)
                for i, acct in enumerate(trainer_accts)]
    for trainer in trainers:
        trainer.step()
    market.start(pid, owner)
    for _ in range(cfg.rounds):
        assert isinstance(aggregator.step(), Opened)
        for _ in ("commit", "reveal"):
            for trainer in trainers:
                trainer.step()
        assert isinstance(aggregator.step(), RoundResult)
    return ctx


@pytest.mark.slow
@pytest.mark.anvil
def test_a_model_changed_outside_the_proof_view_is_caught(anvil_chain: Chain, tmp_path: Path) -> None:
    ctx = run_project(anvil_chain, LocalStorage(tmp_path), "digits-mlp", aggregator_storage=TamperingStorage(tmp_path))
    off, length = ctx.params.view_offset, ctx.params.view_len
    assert not off <= TAMPERED < off + length and length < ctx.numel  # the proof never sees this parameter
    audit = audit_project(ctx)
    first, second = audit.rounds
    assert [(f.round, f.slot, f.field) for f in audit.findings] == [(1, None, "model")]
    detail = first.findings[0].detail
    assert "1 of 2410 parameters" in detail and "0.weight[0, 0]" in detail and "outside the proof view" in detail
    assert {k: v for k, v in first.checks.items() if v != "match"} == {"model": "mismatch"}  # the proof verified
    assert second.matched  # round 2 is re-derived from the posted g(1), and the aggregator was honest in it
    with pytest.raises(AuditMismatch, match=r"round 1, field model: 1 of 2410"):
        raise audit.findings[0].error()


@pytest.mark.slow
@pytest.mark.anvil
@pytest.mark.ipfs
def test_a_round_posted_with_minus_v_fails_fedmarket_audit(anvil_chain: Chain, anvil_node: AnvilHandle,
                                                           ipfs_api: NodeHandle) -> None:
    ctx = run_project(anvil_chain, IpfsStorage(ipfs_api.api_addr), "digits-softmax", node=NegatedDirection)
    out = subprocess.run(
        [sys.executable, "-m", "market.cli", "audit", str(ctx.pid), "--rpc", anvil_node.url, "--ipfs", ipfs_api.api_addr,
         "--market", ctx.market.address, "--json"],
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 1, out.stdout[-2000:] + out.stderr[-2000:]
    assert "AuditMismatch: round 1, field v: v and h recomputed at g(0)" in out.stderr
    assert "the revealed v is minus it" in out.stderr
    data = json.loads(out.stdout.strip().splitlines()[-1])
    assert (data["rounds_audited"], data["rounds_matched"]) == (2, 0)
    for r in data["rounds"]:  # the proof, flags, scores and g(r) all hold for the v committed: only v is wrong
        assert r["checks"] == {"flag": "match", "score": "match", "proof": "match", "model": "match", "v": "mismatch"}
