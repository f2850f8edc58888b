"""The on-chain verifier: Solidity generated from the verifying key, wrapped as IRoundVerifier."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from eth_account.signers.local import LocalAccount
from web3.contract import Contract

from market.chain.client import Chain
from market.errors import ProofError
from market.toolchain.solc import ContractArtifact, compile_contracts
from zk.build import INSECURE_TEXT, is_insecure
from zk.prover import Proof
from zk.verifier import VerifyingKey

#: Gas a transaction calling verifyRound should reserve for it (RoundVerifier.VERIFY_GAS + margin).
VERIFY_ROUND_GAS = 360_000
#: CircuitParams fields passed, in this order, to the RoundVerifier constructor's `circuit` array.
CIRCUIT_KEYS = ("n", "d", "bits", "f", "m", "tau_pct", "dup_pct", "floor_pct")


def solidity_dir(out: Path) -> Path:
    """Write <out>/sol/Groth16Verifier.sol from the verifying key (once); returns the folder."""
    import groth16py

    sol = out / "sol"
    path = sol / "Groth16Verifier.sol"
    if not path.exists():
        sol.mkdir(parents=True, exist_ok=True)
        vk = groth16py.VerifyingKey.from_snarkjs_file(str(out / "verification_key.json"))
        path.write_text(vk.to_solidity(pragma="^0.8.28", contract_name="Groth16Verifier"))
    return sol


def verifier_artifacts(out: Path) -> tuple[ContractArtifact, ContractArtifact]:
    """Compiled (Groth16Verifier, RoundVerifier) for the keys in `out`."""
    arts = compile_contracts(extra_dirs=(solidity_dir(out),))
    return arts["Groth16Verifier"], arts["RoundVerifier"]


def deploy_verifier(chain: Chain, out: Path, sender: LocalAccount | None = None,
                    allow_insecure: bool = False) -> Contract:
    """Deploy the generated verifier and its IRoundVerifier wrapper; refuses forgeable keys."""
    VerifyingKey.load(out / "verification_key.json")  # raises on delta == gamma (no phase 2)
    if is_insecure(out):
        if not allow_insecure:
            raise ProofError(f"refusing to deploy: {INSECURE_TEXT}")
        print(f"WARNING: deploying keys from the {INSECURE_TEXT}", file=sys.stderr)
    p = json.loads((out / "params.json").read_text())
    missing = [k for k in CIRCUIT_KEYS if k not in p]
    if missing:
        raise ProofError(f"{out / 'params.json'} lacks {', '.join(missing)}: keys built for an older circuit")
    circuit = [int(p[k]) for k in CIRCUIT_KEYS]
    groth16, wrapper = verifier_artifacts(out)
    g = chain.deploy(groth16, sender=sender)
    return chain.deploy(wrapper, g.address, circuit, sender=sender)


def verify_on_chain(chain: Chain, verifier: Contract, proof: Proof, public_input: int) -> bool:
    """eth_call verifyRound with explicit gas."""
    fn = verifier.functions.verifyRound(public_input, list(proof.words))
    return bool(fn.call({"from": chain.accounts[0].address, "gas": VERIFY_ROUND_GAS + 100_000}))
