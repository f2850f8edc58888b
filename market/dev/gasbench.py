"""Gas used by each FedMarket entry point, measured from receipts on a fresh anvil (`fedmarket bench gas`).

postRound is measured with the test-only HashCheckVerifier (it accepts proof[0] == public input;
it is deployed only on this throwaway anvil). Its own gas, cold call included, is measured by
calling it through the GasProbe contract (eth_call, same input and proof) and subtracted:
`postRound_bookkeeping_nK` is everything postRound costs except the verifier (21k base, calldata,
checks, the §6 public-input hash over N slots, rewards, events). Add a real verifier's gas
(`fedmarket bench prove`) to get a real round's cost.

Disputes (PROTOCOL.md §5) are measured at n = 4 with the digits example's proof view (650 values at
16 bits: 44 packed elements, 3 Poseidon16 blocks): a post that rejects one trainer
(`postRound_disputable_n4`, nothing settles), that trainer's `cure` (PoseidonCommit recomputes its
commitment), the aggregator's re-post after the cure (`postRound_repost_n4`) and, in a round nobody
cured, `finalizeRound_n4`. The posts include the test verifier's call (`verifier_call`). `declineRound` is a
trainer's decline of an open round (2-trainer project). `challengeReplay` takes a replay of another trainer's
update of round 1 out of round 2 (PROTOCOL.md §3: both views published, PoseidonCommit recomputes both commitments
and their distance).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3 import Web3
from web3.types import RPCEndpoint

from market.chain.client import Chain, dev_accounts
from market.chain.marketplace import Marketplace, ProjectParams
from market.chain.poseidon_contract import GAS_VIEW
from market.paths import ROOT
from market.protocol.commitment import commit_elements, pack
from market.protocol.quant import QuantSpec
from market.toolchain.anvil import fresh_anvil
from market.toolchain.solc import compile_contracts

#: Trainer slots of the benchmark verifier (N in PROTOCOL.md §6).
BENCH_SLOTS = 64
TRAINER_COUNTS = (4, 16, 64)
DISPUTE_TRAINERS = 4
BUDGET = 10**18
BOND = 10**18  # covers the one round's budget, as start requires
CID = bytes.fromhex("01551220") + bytes(range(32))
V_COMMIT = 0x1234_5678
MODEL_COMMIT = 0x4D0D_E100  # g(0)'s view commitment; each post names the next as MODEL_COMMIT + round


def fit_settings(chain: Chain, verifier: str, params: ProjectParams) -> None:
    """Make the test-only HashCheckVerifier answer `params`' circuit settings (createProject compares them)."""
    abi = [{"type": "function", "name": "setSettings", "stateMutability": "nonpayable", "outputs": [],
            "inputs": [{"type": "uint256[9]", "name": "s"}]}]
    contract = chain.w3.eth.contract(address=Web3.to_checksum_address(verifier), abi=abi)
    chain.transact(contract.functions.setSettings([0, *params.circuit_settings]), chain.accounts[0])


def _trainers(n: int) -> list[LocalAccount]:
    """`n` deterministic benchmark accounts (funded with anvil_setBalance)."""
    return [Account.from_key(keccak(b"fedmarket-gasbench-%d" % i)) for i in range(n)]


def _measure_round(chain: Chain, market: Marketplace, verifier: str, probe: Any, n: int) -> dict[str, int]:
    """One project with `n` trainers through one round: gas of join, submit, post, claim, withdrawals."""
    owner, aggregator = chain.accounts[0], chain.accounts[1]
    trainers = chain.accounts[2 : 2 + n]
    params = ProjectParams.make(
        aggregator=aggregator.address, verifier=verifier, join_deadline=chain.now() + 3_600, rounds=1,
        min_trainers=n, max_trainers=n, stake=10**15, aggregator_bond=BOND, model_commit=MODEL_COMMIT,
    )
    fit_settings(chain, verifier, params)
    fn = market.contract.functions.createProject(params.as_tuple(), BUDGET, CID, CID)
    gas: dict[str, int] = {"createProject": chain.transact(fn, owner, value=BUDGET, gas=900_000)["gasUsed"]}
    pid = market.project_count()
    gas["bond"] = market.bond(pid, aggregator)["gasUsed"]
    gas["join"] = max(market.join(pid, t)["gasUsed"] for t in trainers)
    gas["start"] = market.start(pid, owner)["gasUsed"]
    gas["openRound"] = market.open_round(pid, V_COMMIT, aggregator)["gasUsed"]
    # A trainer's submission is two transactions (PROTOCOL.md §3): the commit fixes the rank, the
    # reveal discloses cid and commitment; "commitReveal" is what one trainer pays for both.
    # The reveals open once every commit is in (PROTOCOL.md §3).
    sealed = [((i + 1) << 8, keccak(i.to_bytes(32, "big"))) for i in range(len(trainers))]
    commits = [market.commit_update(pid, 1, market.seal(pid, 1, t.address, CID, value, salt), t)["gasUsed"]
               for t, (value, salt) in zip(trainers, sealed)]
    reveals = [market.reveal_update(pid, 1, CID, value, salt, t)["gasUsed"] for t, (value, salt) in zip(trainers, sealed)]
    gas["commitUpdate"], gas["revealUpdate"] = max(commits), max(reveals)
    gas["commitReveal"] = max(c + r for c, r in zip(commits, reveals))
    flags, scores = [0] * n, [1_000 + i for i in range(n)]
    public_input = market.public_input(pid, 1, MODEL_COMMIT + 1, flags, scores)
    proof = [public_input] + [0] * 7
    verifier_gas, ok = chain.call(probe.functions.measure(verifier, public_input, proof))
    assert ok, "the benchmark verifier refused the contract's own public input"
    posted = market.post_round(pid, 1, CID, CID, MODEL_COMMIT + 1, flags, scores, proof, aggregator)["gasUsed"]
    gas["postRound"] = posted
    gas["verifier"] = verifier_gas
    gas["postRound_bookkeeping"] = posted - verifier_gas
    gas["claim"] = market.claim(pid, trainers[0])["gasUsed"]
    gas["withdrawStake"] = market.withdraw_stake(pid, trainers[0])["gasUsed"]
    gas["withdrawRefund"] = market.withdraw_refund(pid, owner)["gasUsed"]
    gas["withdrawBond"] = market.withdraw_bond(pid, aggregator)["gasUsed"]
    return gas


def _views(n: int, seed: int) -> list[tuple[list[int], int]]:
    """`n` random views of GAS_VIEW's size over the whole quantization range: (packed elements, commitment)."""
    count, bits = GAS_VIEW
    spec = QuantSpec(bits=bits)
    rng = np.random.default_rng(seed)
    views = []
    for _ in range(n):
        elements = pack(rng.integers(-spec.qmax, spec.qmax, size=count, endpoint=True), spec)
        views.append((elements, commit_elements(elements, count)))
    return views


def _round_one(chain: Chain, market: Marketplace, verifier: str, n: int, rounds: int = 1) -> tuple[int, list[LocalAccount]]:
    """A project of `n` trainers and `rounds` rounds with GAS_VIEW's proof view, started, its round 1 open:
    (pid, trainers)."""
    owner, aggregator = chain.accounts[0], chain.accounts[1]
    trainers = chain.accounts[2 : 2 + n]
    count, bits = GAS_VIEW
    params = ProjectParams.make(
        aggregator=aggregator.address, verifier=verifier, join_deadline=chain.now() + 3_600, rounds=rounds,
        min_trainers=n, max_trainers=n, stake=10**15, aggregator_bond=BOND, view_len=count, quant_bits=bits,
        model_commit=MODEL_COMMIT,
    )
    fit_settings(chain, verifier, params)
    pid = market.create_project(params, BUDGET, owner)
    market.bond(pid, aggregator)
    for t in trainers:
        market.join(pid, t)
    market.start(pid, owner)
    market.open_round(pid, V_COMMIT, aggregator)
    return pid, trainers


def _measure_decline(chain: Chain, market: Marketplace, verifier: str) -> dict[str, int]:
    """A trainer's `declineRound` in an open round of a 2-trainer project (PROTOCOL.md §3)."""
    pid, trainers = _round_one(chain, market, verifier, 2)
    return {"declineRound": market.decline_round(pid, 1, trainers[0])["gasUsed"]}


def _measure_replay(chain: Chain, market: Marketplace, verifier: str, n: int) -> dict[str, int]:
    """Round 1 of `n` trainers posted; in round 2 trainer 1 resubmits trainer 0's round-1 view and a bystander takes it
    out (`challengeReplay`)."""
    aggregator = chain.accounts[1]
    pid, trainers = _round_one(chain, market, verifier, n, rounds=2)
    views = _views(n, pid)
    market.submit_updates(pid, 1, [(t, CID, commitment) for t, (_, commitment) in zip(trainers, views, strict=True)])
    flags, scores = [0] * n, [1_000 + i for i in range(n)]
    proof = [market.public_input(pid, 1, MODEL_COMMIT + 1, flags, scores)] + [0] * 7
    market.post_round(pid, 1, CID, CID, MODEL_COMMIT + 1, flags, scores, proof, aggregator)
    market.open_round(pid, V_COMMIT, aggregator)
    again = [views[0], *_views(n - 1, pid + 1)]  # trainer 1 resubmits trainer 0's view
    order = [trainers[1], trainers[0], *trainers[2:]]
    market.submit_updates(pid, 2, [(t, CID, commitment) for t, (_, commitment) in zip(order, again, strict=True)])
    receipt = market.challenge_replay(pid, 2, 1, (1, 0), views[0][0], views[0][0], chain.accounts[-1])
    return {"challengeReplay": receipt["gasUsed"]}


def _measure_dispute(chain: Chain, market: Marketplace, verifier: str, n: int, cured: bool) -> dict[str, int]:
    """One project of `n` trainers with GAS_VIEW's proof view whose round 1 post rejects trainer 0 (flag 2):
    if `cured`, it cures and the aggregator re-posts with it accepted; else anyone finalizes the post."""
    owner, aggregator = chain.accounts[0], chain.accounts[1]
    pid, trainers = _round_one(chain, market, verifier, n)
    views = _views(n, pid)
    market.submit_updates(pid, 1, [(t, CID, commitment) for t, (_, commitment) in zip(trainers, views, strict=True)])
    flags, scores = [2] + [0] * (n - 1), [0] + [1_000 + i for i in range(1, n)]
    proof = [market.public_input(pid, 1, MODEL_COMMIT + 1, flags, scores)] + [0] * 7
    gas = {f"postRound_disputable_n{n}": market.post_round(pid, 1, CID, CID, MODEL_COMMIT + 1, flags, scores, proof, aggregator)["gasUsed"]}
    end = market.project(pid).post_deadline
    if cured:
        gas["cure"] = market.cure(pid, 1, views[0][0], trainers[0])["gasUsed"]
        chain.time_travel(end - chain.now() + 1)
        flags, scores = [0] * n, [1_000 + i for i in range(n)]
        proof = [market.public_input(pid, 1, MODEL_COMMIT + 1, flags, scores)] + [0] * 7
        gas[f"postRound_repost_n{n}"] = market.post_round(pid, 1, CID, CID, MODEL_COMMIT + 1, flags, scores, proof, aggregator)["gasUsed"]
    else:
        chain.time_travel(end - chain.now() + 1)
        gas[f"finalizeRound_n{n}"] = market.finalize_round(pid, 1, MODEL_COMMIT + 1, flags, scores, owner)["gasUsed"]
    return gas


def run() -> dict[str, Any]:
    """Deploy on a fresh anvil and measure every entry point; postRound at 4, 16 and 64 trainers, the
    dispute entry points at 4."""
    artifacts = compile_contracts([ROOT / "tests" / "contracts"])
    with fresh_anvil() as anvil:
        accounts = dev_accounts(2) + _trainers(max(TRAINER_COUNTS))
        chain = Chain.connect(anvil.url, accounts=accounts)
        for acct in accounts[2:]:
            chain.w3.provider.make_request(RPCEndpoint("anvil_setBalance"), [acct.address, hex(10**20)])
        market = Marketplace.deploy(chain, accounts[0], artifacts["FedMarket"])
        verifier = chain.deploy(artifacts["HashCheckVerifier"], BENCH_SLOTS, sender=accounts[0])
        probe = chain.deploy(artifacts["GasProbe"], sender=accounts[0])
        rounds = {n: _measure_round(chain, market, verifier.address, probe, n) for n in TRAINER_COUNTS}
        disputes = {
            **_measure_dispute(chain, market, verifier.address, DISPUTE_TRAINERS, cured=True),
            **_measure_dispute(chain, market, verifier.address, DISPUTE_TRAINERS, cured=False),
        }
        decline = _measure_decline(chain, market, verifier.address)
        replay = _measure_replay(chain, market, verifier.address, DISPUTE_TRAINERS)
    small, large = rounds[TRAINER_COUNTS[0]], rounds[TRAINER_COUNTS[-1]]
    result: dict[str, Any] = {
        name: max(r[name] for r in rounds.values())
        for name in ("createProject", "bond", "join", "start", "openRound", "commitUpdate", "revealUpdate",
                     "commitReveal", "claim",
                     "withdrawStake", "withdrawRefund", "withdrawBond")
    }
    for n, r in rounds.items():
        result[f"postRound_n{n}"] = r["postRound"]
        result[f"postRound_bookkeeping_n{n}"] = r["postRound_bookkeeping"]
    result["withdraw"] = result["withdrawStake"]  # the trainer's withdrawal, as the issue names it
    result["verifier_call"] = small["verifier"]
    span = TRAINER_COUNTS[-1] - TRAINER_COUNTS[0]
    result["postRound_bookkeeping_per_trainer"] = round(
        (large["postRound_bookkeeping"] - small["postRound_bookkeeping"]) / span
    )
    result.update(disputes)
    result.update(decline)
    result.update(replay)
    result["verifier_slots"] = BENCH_SLOTS
    result["backend"] = "anvil"
    return result
