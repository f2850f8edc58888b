"""Gas used by each FedMarket entry point, measured from receipts on a fresh anvil (`fedmarket bench gas`).

postRound is measured with the test-only HashCheckVerifier (it accepts proof[0] == public input;
it is deployed only on this throwaway anvil). Its own gas, cold call included, is measured by
calling it through the GasProbe contract (eth_call, same input and proof) and subtracted:
`postRound_bookkeeping_nK` is everything postRound costs except the verifier (21k base, calldata,
checks, the §6 public-input hash over N slots, rewards, events). Add a real verifier's gas
(`fedmarket bench prove`) to get a real round's cost.
"""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3.types import RPCEndpoint

from market.chain.client import Chain, dev_accounts
from market.chain.marketplace import Marketplace, ProjectParams
from market.paths import ROOT
from market.toolchain.anvil import start_anvil
from market.toolchain.process import stop_process
from market.toolchain.solc import compile_contracts

#: Trainer slots of the benchmark verifier (N in PROTOCOL.md §6).
BENCH_SLOTS = 64
TRAINER_COUNTS = (4, 16, 64)
CID = bytes.fromhex("01551220") + bytes(range(32))
V_COMMIT = 0x1234_5678


def _trainers(n: int) -> list[LocalAccount]:
    """`n` deterministic benchmark accounts (funded with anvil_setBalance)."""
    return [Account.from_key(keccak(b"fedmarket-gasbench-%d" % i)) for i in range(n)]


def _measure_round(chain: Chain, market: Marketplace, verifier: str, probe: Any, n: int) -> dict[str, int]:
    """One project with `n` trainers through one round: gas of join, submit, post, claim, withdrawals."""
    owner, aggregator = chain.accounts[0], chain.accounts[1]
    trainers = chain.accounts[2 : 2 + n]
    params = ProjectParams.make(
        aggregator=aggregator.address, verifier=verifier, join_deadline=chain.now() + 3_600, rounds=1,
        min_trainers=n, max_trainers=n, stake=10**15, aggregator_bond=10**16,
    )
    budget = 10**18
    fn = market.contract.functions.createProject(params.as_tuple(), budget, CID, CID)
    gas: dict[str, int] = {"createProject": chain.transact(fn, owner, value=budget, gas=900_000)["gasUsed"]}
    pid = market.project_count()
    gas["bond"] = market.bond(pid, aggregator)["gasUsed"]
    gas["join"] = max(market.join(pid, t)["gasUsed"] for t in trainers)
    gas["start"] = market.start(pid, owner)["gasUsed"]
    gas["openRound"] = market.open_round(pid, V_COMMIT, aggregator)["gasUsed"]
    # A trainer's submission is two transactions (PROTOCOL.md §3): the commit fixes the rank, the
    # reveal discloses cid and commitment; "commitReveal" is what one trainer pays for both.
    commits, reveals, both = [], [], []
    for i, t in enumerate(trainers):
        value, salt = (i + 1) << 8, keccak(i.to_bytes(32, "big"))
        commits.append(market.commit_update(pid, 1, market.seal(pid, 1, t.address, CID, value, salt), t)["gasUsed"])
        reveals.append(market.reveal_update(pid, 1, CID, value, salt, t)["gasUsed"])
        both.append(commits[-1] + reveals[-1])
    gas["commitUpdate"], gas["revealUpdate"], gas["commitReveal"] = max(commits), max(reveals), max(both)
    flags, scores = [0] * n, [1_000 + i for i in range(n)]
    public_input = market.public_input(pid, 1, flags, scores)
    proof = [public_input] + [0] * 7
    verifier_gas, ok = chain.call(probe.functions.measure(verifier, public_input, proof))
    assert ok, "the benchmark verifier refused the contract's own public input"
    posted = market.post_round(pid, 1, CID, CID, flags, scores, proof, aggregator)["gasUsed"]
    gas["postRound"] = posted
    gas["verifier"] = verifier_gas
    gas["postRound_bookkeeping"] = posted - verifier_gas
    gas["claim"] = market.claim(pid, trainers[0])["gasUsed"]
    gas["withdrawStake"] = market.withdraw_stake(pid, trainers[0])["gasUsed"]
    gas["withdrawRefund"] = market.withdraw_refund(pid, owner)["gasUsed"]
    gas["withdrawBond"] = market.withdraw_bond(pid, aggregator)["gasUsed"]
    return gas


def run() -> dict[str, Any]:
    """Deploy on a fresh anvil and measure every entry point; postRound at 4, 16 and 64 trainers."""
    artifacts = compile_contracts([ROOT / "tests" / "contracts"])
    handle = start_anvil()
    try:
        accounts = dev_accounts(2) + _trainers(max(TRAINER_COUNTS))
        chain = Chain.connect(handle.url, accounts=accounts)
        for acct in accounts[2:]:
            chain.w3.provider.make_request(RPCEndpoint("anvil_setBalance"), [acct.address, hex(10**20)])
        market = Marketplace.deploy(chain, accounts[0], artifacts["FedMarket"])
        verifier = chain.deploy(artifacts["HashCheckVerifier"], BENCH_SLOTS, sender=accounts[0])
        probe = chain.deploy(artifacts["GasProbe"], sender=accounts[0])
        rounds = {n: _measure_round(chain, market, verifier.address, probe, n) for n in TRAINER_COUNTS}
    finally:
        stop_process(handle.pid)
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
    result["verifier_slots"] = BENCH_SLOTS
    result["backend"] = "anvil"
    return result
