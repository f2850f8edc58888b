"""Is a project's round verifier the one its settings and the keys installed here make? (`trainer join`, docs/ZK.md)

A trainer stakes on a project only if the verifier the contract calls proves exactly the project's
circuit with a verifying key the trainer has itself: the RoundVerifier wrapper's code must be the one
compiled here from contracts/zk/RoundVerifier.sol, its settings the project's, and the Groth16 verifier it
forwards to must be the one generated from the verification_key.json installed here for exactly those
settings (the key's points are constants in that code). Development keys, which their maker can forge
proofs with, are refused on any chain that may hold value unless the trainer accepts them explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from web3 import Web3
from web3.contract import Contract

from market.chain.client import Chain
from market.errors import InsecureKeys, KeysNotInstalled, VerifierMismatch
from market.paths import BUILD
from market.toolchain.solc import compile_contracts
from zk.build import INSECURE_TEXT, CircuitParams, circuit_key, is_insecure
from zk.onchain import CIRCUIT_KEYS, verifier_artifacts

#: Chain ids of local development chains (anvil and hardhat; geth --dev and ganache), which hold no value.
DEV_CHAIN_IDS = frozenset({31337, 1337})
#: RoundVerifier's getter of each CircuitParams field, in CIRCUIT_KEYS order (its constructor's `circuit` array and
#: the first entries of `settings()`).
SETTING_GETTERS = ("maxTrainers", "viewLen", "quantBits", "krumF", "krumM", "tauPct", "dupPct", "floorPct")
#: Where the keys of each circuit are installed: <root>/<circuit_key> (zk.build.artifact_dir).
KEYS_ROOT = BUILD / "zk"


@dataclass(frozen=True)
class VerifierCheck:
    """A verifier that passed: the folder of the keys it matches, and whether they are development keys."""

    keys: Path
    insecure: bool


def code_matches(code: bytes, compiled: str, immutables: Mapping[str, Sequence[tuple[int, int]]]) -> bool:
    """True when runtime `code` is the `compiled` runtime code (hex) once the constructor's immutables are
    filled in, each consistently at all of its places, and whatever their values.

    The trailing CBOR metadata (its length in the last two bytes) is left out: it hashes the source's path,
    not the code, and nothing executes it.
    """
    local = bytes.fromhex(compiled)
    if len(code) != len(local) or len(local) < 2:
        return False
    masked = bytearray(code)
    for places in immutables.values():
        if len({code[start : start + length] for start, length in places}) > 1:
            return False
        for start, length in places:
            masked[start : start + length] = bytes(length)
    end = len(local) - int.from_bytes(local[-2:], "big") - 2
    return end > 0 and masked[:end] == local[:end]


def refuse_insecure_keys(chain_id: int, insecure: bool, accept_insecure_keys: bool) -> None:
    """InsecureKeys for development keys on chain `chain_id` when it may hold value (not a local development
    chain) and the trainer has not accepted them explicitly."""
    if insecure and chain_id not in DEV_CHAIN_IDS and not accept_insecure_keys:
        raise InsecureKeys(chain_id, f"chain {chain_id} may hold value and the project's verifier checks proofs against "
                                     f"development keys: {INSECURE_TEXT} Pass --accept-insecure-keys to join anyway.")


def _code(chain: Chain, address: str) -> bytes:
    """The runtime code at `address` (empty for an account without code)."""
    return bytes(chain.w3.eth.get_code(Web3.to_checksum_address(address)))


def check_wrapper(chain: Chain, verifier: str, params: CircuitParams) -> Contract:
    """The RoundVerifier at `verifier`, once its code is the RoundVerifier compiled here and its settings are the
    circuit's `params`; VerifierMismatch naming the first that differs (an owner's `--verifier`, a trainer's join)."""
    wrapper = compile_contracts()["RoundVerifier"]
    if not code_matches(_code(chain, verifier), wrapper.deployed_bytecode, wrapper.immutables):
        raise VerifierMismatch("RoundVerifier code", f"the contract at {verifier} is not the RoundVerifier compiled here "
                                                     "from contracts/zk/RoundVerifier.sol")
    contract = chain.w3.eth.contract(address=Web3.to_checksum_address(verifier), abi=wrapper.abi)
    answered = chain.call(contract.functions.settings())  # one call; the rule (last entry) is a constant of the code
    settings = {getter: int(value) for getter, value in zip(SETTING_GETTERS, answered, strict=False)}
    differ = [(getter, key) for getter, key in zip(SETTING_GETTERS, CIRCUIT_KEYS) if settings[getter] != getattr(params, key)]
    if differ:
        raise VerifierMismatch(", ".join(getter for getter, _ in differ), "; ".join(
            f"verifier {getter} = {settings[getter]}, project {key} = {getattr(params, key)}" for getter, key in differ))
    return contract


def check_verifier(chain: Chain, verifier: str, params: CircuitParams, keys_root: Path = KEYS_ROOT) -> Path:
    """The folder of the installed keys the project's verifier at `verifier` matches, or the named error of the
    first thing that differs: VerifierMismatch (its code, a setting, or its Groth16 verifier's code) or
    KeysNotInstalled (nothing here to compare its verifying key with)."""
    contract = check_wrapper(chain, verifier, params)
    out = keys_root / circuit_key(params)
    if not ((out / "verification_key.json").exists() and (out / "SETUP.json").exists()):
        raise KeysNotInstalled(str(out), f"no keys installed in {out} for the circuit {params}: put the project's "
                                         f"ceremony zkeys in {out / 'ceremony'} and run `fedmarket zk ceremony finalize "
                                         "PROJECT.toml --ptau PTAU`, which checks them with `snarkjs zkey verify` and "
                                         "installs the keys (docs/ZK.md)")
    groth16 = verifier_artifacts(out)[0]
    target = str(chain.call(contract.functions.groth16()))
    if not code_matches(_code(chain, target), groth16.deployed_bytecode, groth16.immutables):
        raise VerifierMismatch("Groth16Verifier code", f"the Groth16 verifier at {target} is not the one generated from "
                                                       f"{out / 'verification_key.json'}: another verifying key")
    return out


def check_project_verifier(chain: Chain, verifier: str, params: CircuitParams, accept_insecure_keys: bool = False,
                           keys_root: Path = KEYS_ROOT) -> VerifierCheck:
    """Both checks a trainer makes before it joins: the verifier matches the keys installed here for exactly the
    project's settings (check_verifier), and they are no development keys on a chain that may hold value."""
    out = check_verifier(chain, verifier, params, keys_root)
    insecure = is_insecure(out)
    refuse_insecure_keys(chain.chain_id, insecure, accept_insecure_keys)
    return VerifierCheck(out, insecure)
