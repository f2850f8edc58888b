"""Round proofs on chain: the generated verifier on eth-tester and anvil, and postRound end to end."""

from __future__ import annotations

from pathlib import Path

import pytest
from web3 import Web3

from market.chain.client import Chain
from market.chain.marketplace import Marketplace
from market.errors import ContractRevert, ProofError
from market.protocol.commitment import commit
from market.protocol.quant import model_spec
from market.toolchain.solc import compile_contracts
from tests.fixtures_zk import MODEL_IN, PARAMS, SPEC, RoundCase, direction, public_data, tampered, updates, with_split
from tests.marketplace_harness import CID, MODEL_CID, Deployment
from zk.onchain import deploy_verifier, solidity_dir, verify_on_chain
from zk.prover import Proof, prove
from zk.witness import RoundContext, Slot, build_witness


def test_insecure_keys_need_an_explicit_opt_in(zk_artifacts: Path) -> None:
    with pytest.raises(ProofError, match="INSECURE DEVELOPMENT SETUP"):
        deploy_verifier(Chain.in_process(), zk_artifacts)


def test_generated_verifier_on_chain(chain: Chain, zk_artifacts: Path, honest_round: RoundCase) -> None:
    verifier = deploy_verifier(chain, zk_artifacts, allow_insecure=True)
    assert chain.call(verifier.functions.maxTrainers()) == PARAMS.n
    assert chain.call(verifier.functions.krumF()) == PARAMS.f
    assert chain.call(verifier.functions.dupPct()) == PARAMS.dup_pct
    assert chain.call(verifier.functions.floorPct()) == PARAMS.floor_pct
    w, proof = honest_round.witness, honest_round.proof
    assert verify_on_chain(chain, verifier, proof, w.public_input)
    for what, change in tampered(honest_round).items():  # score, flag, ..., the next round (a replay)
        assert not verify_on_chain(chain, verifier, proof, public_data(honest_round, **change)), what
    bad = list(proof.words)
    bad[7] ^= 1  # C off the curve: the generated verifier reverts, the wrapper answers false
    assert not verify_on_chain(chain, verifier, Proof(tuple(bad)), w.public_input)


@pytest.mark.anvil
def test_verify_round_with_too_little_gas_reverts(anvil_chain: Chain, zk_artifacts: Path,
                                                   honest_round: RoundCase) -> None:
    """Never a silent `false` for want of gas (what makes estimate_gas under-report)."""
    verifier = deploy_verifier(anvil_chain, zk_artifacts, allow_insecure=True)
    fn = verifier.functions.verifyRound(honest_round.witness.public_input, list(honest_round.proof.words))
    selector = Web3.keccak(text="VerifierGasTooLow(uint256,uint256)")[:4].hex()
    with pytest.raises(Exception, match=selector):
        fn.call({"from": anvil_chain.accounts[0].address, "gas": 200_000})
    assert anvil_chain.estimate(fn, anvil_chain.accounts[0]) > 320_000


@pytest.mark.slow
@pytest.mark.anvil
def test_post_round_with_a_real_proof(anvil_chain: Chain, zk_artifacts: Path) -> None:
    """FedMarket on anvil checks a real round proof; a changed score is refused with InvalidProof."""
    chain = anvil_chain
    verifier = deploy_verifier(chain, zk_artifacts, allow_insecure=True)
    arts = compile_contracts(extra_dirs=(solidity_dir(zk_artifacts),))
    market = Marketplace.deploy(chain, chain.accounts[0], arts["FedMarket"])
    dep = Deployment(chain, market, verifier, PARAMS.n)
    pid = dep.create(krum_f=PARAMS.f, view_len=PARAMS.d, max_trainers=PARAMS.n, tau_pct=PARAMS.tau_pct, slash_bps=0,
                     model_commit=commit(MODEL_IN, model_spec(SPEC)))
    dep.start(pid, PARAMS.n)
    v = direction(0)
    market.open_round(pid, with_split(v)[2], dep.aggregator)
    round_ = market.project(pid).round
    ups = updates(0)
    market.submit_updates(pid, round_, [(dep.trainers[i], CID, commit(u, SPEC)) for i, u in enumerate(ups)],
                          close_commits=True)
    ctx = RoundContext(chain.w3.eth.chain_id, market.address, pid, round_, PARAMS.n)
    seqs = market.submission_order(pid, round_)
    assert seqs == list(range(PARAMS.n))  # submitted in slot order
    w = build_witness(PARAMS, ctx, *with_split(v), [Slot(commit(u, SPEC), u, q) for u, q in zip(ups, seqs)], MODEL_IN,
                      MODEL_IN)  # round 1: g(r-2) is g(0) as well (the chain's previousModelCommitment)
    assert w.public_input == market.public_input(pid, round_, w.model_commit, w.flags, w.scores)
    proof = prove(zk_artifacts, w.inputs)
    scores = list(w.scores)
    scores[0] += 1
    with pytest.raises(ContractRevert) as err:
        market.post_round(pid, round_, MODEL_CID, CID, w.model_commit, w.flags, scores, proof.words, dep.aggregator)
    assert err.value.name == "InvalidProof"
    with pytest.raises(ContractRevert) as err:  # a g(r) that is not the average
        market.post_round(pid, round_, MODEL_CID, CID, w.model_commit + 1, w.flags, w.scores, proof.words, dep.aggregator)
    assert err.value.name == "InvalidProof"
    receipt = market.post_round(pid, round_, MODEL_CID, CID, w.model_commit, w.flags, w.scores, proof.words, dep.aggregator)
    assert receipt["status"] == 1
    assert market.model_commitment(pid) == w.model_commit  # the next round's proof starts from it
