"""The whole marketplace in one run: deploy, create and fund, trainers (some attacking), proven rounds, settlement.

On the embedded default everything runs in this process: the in-process chain (py-evm) and the
local content store. With a devnet or an RPC URL and an IPFS node it runs against those. Every
round is trained for real, proven for real (Groth16, verified on chain and with py-ecc) and paid
by the contract; the run fails if any invariant does not hold. One honest trainer withholds its
blob in one round: the aggregator rejects it (flag 2), the post waits out its dispute window, the
trainer cures on chain and the aggregator posts the round again with it (PROTOCOL.md §5).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount

from aggregator.node import AggregatorNode, RoundResult, circuit_params
from market.chain.client import Chain, dev_accounts
from market.chain.marketplace import MAX_ROUNDS, Marketplace, State
from market.ml.tasks import dirichlet_partition, get_task
from market.ml.training import evaluate
from market.parties.audit import audit_project
from market.parties.context import load_context
from market.parties.money import money_by_party
from market.parties.owner import create_project
from market.parties.project_file import ProjectFile
from market.parties.trainer_node import SOLO_ATTACKS, TrainerNode
from market.protocol.constants import ETHER
from market.protocol.manifest import HyperParams, Manifest, RuleConfig
from market.protocol.quant import QuantSpec
from market.storage import LocalStorage, Storage
from zk.prover import Proof
from zk.verifier import VerifyingKey, verify

#: The demo's model learned when its final test accuracy beats the initial one by at least this much.
LEARNED_MARGIN = 0.10


@dataclass(frozen=True)
class DemoConfig:
    """What the demo runs: counts, attacks, rounds, task and where."""

    trainers: int = 8
    attackers: int = 3
    attacks: tuple[str, ...] = ("sign_flip", "scaling", "free_rider_zero")
    rounds: int = 5
    task: str = "digits-softmax"
    alpha: float = 0.5
    seed: int = 0
    budget: int = 8 * ETHER
    stake: int = ETHER
    bond: int = 2 * ETHER  # raised to one round's budget when below it (FedMarket refuses a smaller bond)
    withhold_round: int = 2  # the first trainer withholds its blob then cures in this round (0: nobody)
    flower: bool = False  # every honest trainer trains through a Flower NumPyClient (market.ml.flower.TaskClient)
    out: Path = Path("build/demo")

    def __post_init__(self) -> None:
        if not 0 <= self.attackers < self.trainers:
            raise ValueError("need 0 <= attackers < trainers")
        if not 1 <= self.rounds <= MAX_ROUNDS:
            raise ValueError(f"rounds = {self.rounds}: must be 1..{MAX_ROUNDS}")
        unknown = [a for a in self.attacks if a not in SOLO_ATTACKS]
        if unknown or not self.attacks:
            raise ValueError(f"attacks must be among {SOLO_ATTACKS}, got {list(self.attacks)}")


@dataclass
class DemoRun:
    """What happened: per-round results, money, checks."""

    config: DemoConfig
    rounds: list[RoundResult] = field(default_factory=list)
    disputed: list[RoundResult] = field(default_factory=list)  # provisional posts later cured and re-posted
    attackers: list[str] = field(default_factory=list)
    attack_of: dict[str, str] = field(default_factory=dict)
    balances: dict[str, dict[str, int]] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    market: str = ""  # the marketplace's address and the project's id, known once the project is created
    pid: int = 0


def project_file(cfg: DemoConfig) -> ProjectFile:
    """The demo's project: the task's proof view, Multi-Krum with f = attackers (at least 1) and m = n - f."""
    task = get_task(cfg.task)
    manifest = Manifest(task=task.name, spec_hash=task.spec_hash(), view=task.view(), hyper=HyperParams(),
                        rule=RuleConfig(f=max(1, cfg.attackers), m=0), quant=QuantSpec())
    return ProjectFile(
        manifest=manifest, rounds=cfg.rounds, min_trainers=cfg.trainers, max_trainers=cfg.trainers,
        budget=cfg.budget, stake=cfg.stake, aggregator_bond=max(cfg.bond, cfg.budget // cfg.rounds),
        token="0x" + "00" * 20, aggregator=None,
        join_window=3600, open_window=3600, submit_window=3600, post_window=3600, slash_bps=5000,
    )


def accounts(chain: Chain, n: int) -> list[LocalAccount]:
    """Owner, aggregator and `n` trainers from the development mnemonic; extra ones funded by account 0."""
    accts = dev_accounts(n + 2)
    for extra in accts[len(chain.accounts):]:
        chain.transfer(chain.accounts[0], extra.address, 100 * ETHER)
    return accts


def run_demo(cfg: DemoConfig, chain: Chain | None = None, storage: Storage | None = None,
             on_round: Callable[[RoundResult, DemoRun], None] | None = None,
             on_phase: Callable[[str], None] = lambda _: None) -> DemoRun:
    """Run one whole project and check its invariants; `on_round` sees each posted round, `on_phase` each step."""
    t_start = time.perf_counter()
    chain = chain or Chain.in_process()
    tmp = None
    if storage is None:
        tmp = tempfile.TemporaryDirectory(prefix="fedmarket-demo-")
        storage = LocalStorage(tmp.name)
    run = DemoRun(cfg)
    owner, agg_acct, *trainer_accts = accounts(chain, cfg.trainers)
    on_phase("deploying the marketplace, building the round circuit and its keys")
    market = Marketplace.deploy(chain, owner)
    pf = project_file(cfg)
    created = create_project(market, storage, pf, owner, agg_acct.address)
    run.market, run.pid = market.address, created.pid
    on_phase("loading the proving key")
    ctx = load_context(market, storage, created.pid)
    aggregator = AggregatorNode(ctx, agg_acct)
    vk = VerifyingKey.load(aggregator.circuit_dir / "verification_key.json")
    market.bond(created.pid, agg_acct)

    parts = dirichlet_partition(ctx.task.train.y.numpy(), cfg.trainers, cfg.alpha, cfg.seed)
    nodes = []
    if cfg.flower:
        from market.ml.flower import FlowerTrainer, TaskClient  # installs flwr on first use
    for i, acct in enumerate(trainer_accts):
        attack = cfg.attacks[(i - (cfg.trainers - cfg.attackers)) % len(cfg.attacks)] if i >= cfg.trainers - cfg.attackers else None
        if attack:
            run.attackers.append(acct.address)
            run.attack_of[acct.address] = attack
        withhold = frozenset({cfg.withhold_round}) if i == 0 and cfg.withhold_round else frozenset()
        data = ctx.task.train.subset(parts[i])
        flower = None
        if cfg.flower and attack is None:
            flower = FlowerTrainer(TaskClient(ctx.task.build_model, data), ctx.layout, f"trainer {i}'s Flower client")
        # the withholding trainer shows the dispute path: it submits its update even when that is against v
        nodes.append(TrainerNode(ctx, acct, data, attack=attack, withhold=withhold, flower=flower,
                                 decline_against=False if withhold else None))
    for node in nodes:
        node.step()
    market.start(created.pid, owner)

    _, initial_acc = evaluate(ctx.task.build_model, ctx.global_model(0), ctx.task.test)
    proofs_ok = 0
    for r in range(1, cfg.rounds + 1):
        on_phase(f"round {r}/{cfg.rounds}: opening (validation direction committed)")
        aggregator.step()
        for i, node in enumerate(nodes):
            on_phase(f"round {r}/{cfg.rounds}: trainer {i + 1}/{len(nodes)} training and sealing its update")
            node.step()
        for i, node in enumerate(nodes):  # every commit is in: the reveals open (PROTOCOL §3)
            on_phase(f"round {r}/{cfg.rounds}: trainer {i + 1}/{len(nodes)} uploading and revealing")
            node.step()
        on_phase(f"round {r}/{cfg.rounds}: validating, scoring, proving and posting")
        result = aggregator.step()
        assert isinstance(result, RoundResult), result
        proofs_ok += verify(vk, Proof(result.proof), [result.public_input])
        if market.project(created.pid).disputing:
            on_phase(f"round {r}/{cfg.rounds}: dispute window: the rejected trainer cures, the aggregator re-posts")
            run.disputed.append(result)
            for node in nodes:
                node.step()
            chain.time_travel(pf.post_window + 1)
            result = aggregator.step()
            assert isinstance(result, RoundResult), result
            proofs_ok += verify(vk, Proof(result.proof), [result.public_input])
        run.rounds.append(result)
        if on_round:
            on_round(result, run)

    on_phase("settling: claims, stake withdrawals, refund, bond")
    for node in nodes:
        node.settle()
    project = market.project(created.pid)
    if project.owner_refund:
        market.withdraw_refund(created.pid, owner)
    if project.bond_held:
        market.withdraw_bond(created.pid, agg_acct)

    _, final_acc = evaluate(ctx.task.build_model, ctx.global_model(cfg.rounds), ctx.task.test)
    run.balances = money_by_party(market, created.pid, ctx.created.block_number)
    flows = {d: sum(party[d] for party in run.balances.values()) for d in ("in", "out")}
    honest_slashed = sum(f == 1 for r in run.rounds for t, f in zip(r.trainers, r.flags) if t not in run.attackers)
    honest_excluded = sum(f == 3 for r in run.rounds for t, f in zip(r.trainers, r.flags) if t not in run.attackers)
    attackers_flagged = sum(_always_flagged(run.rounds, a) for a in run.attackers)
    run.checks = {
        "funds_conserved": flows["in"] == flows["out"] and chain.balance(market.address) == 0,
        "proofs_verified_on_chain_and_py_ecc": proofs_ok == cfg.rounds + len(run.disputed),
        "withheld_blob_disputed_cured_and_reposted": [d.round for d in run.disputed] == (
            [cfg.withhold_round] if 1 <= cfg.withhold_round <= cfg.rounds else [])
            and all(r.cured for r in run.rounds if r.round in {d.round for d in run.disputed}),
        "no_honest_trainer_slashed": honest_slashed == 0,
        "every_attacker_flagged_when_attacking": attackers_flagged == len(run.attackers),
        "project_finished": market.project(created.pid).state == State.FINISHED,
        "model_learned": final_acc >= initial_acc + LEARNED_MARGIN,
    }
    run.figures = {
        "rounds": cfg.rounds, "trainers": cfg.trainers, "attackers": len(run.attackers),
        "attackers_flagged": attackers_flagged, "honest_slashed": honest_slashed, "honest_excluded": honest_excluded,
        "initial_accuracy": initial_acc, "final_accuracy": final_acc, "funds_conserved": run.checks["funds_conserved"],
        "proofs_verified": proofs_ok, "disputed_rounds": [d.round for d in run.disputed],
        "cured": sum(len(r.cured) for r in run.rounds), "wei_in": flows["in"], "wei_out": flows["out"],
        "mean_prove_s": sum(r.prove_s for r in run.rounds) / max(1, len(run.rounds)),
        "mean_post_round_gas": sum(r.gas for r in run.rounds) // max(1, len(run.rounds)),
        "circuit": str(circuit_params(ctx)), "wall_seconds": time.perf_counter() - t_start,
        "backend": chain.backend, "project": created.pid, "marketplace": market.address,
        "flower_trainers": sum(node.flower is not None for node in nodes),
    }
    audit = audit_project(ctx, vk)  # what anyone can re-derive of every round from the chain and storage alone
    run.checks["audit_matches_every_round"] = audit.matched == cfg.rounds
    run.figures["audit_rounds_matched"] = audit.matched
    if tmp is not None:
        tmp.cleanup()
    return run


def _always_flagged(rounds: list[RoundResult], trainer: str) -> bool:
    """True if `trainer` submitted at least once and was flagged in every round it submitted to."""
    seen = [r.flags[r.trainers.index(trainer)] != 0 for r in rounds if r.trainers.index(trainer) in r.submitted]
    return bool(seen) and all(seen)


