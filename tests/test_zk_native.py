"""zk.build.native_setup (groth16py's in-process native circom-2 compiler): the same circuit as circom2's, and its
proofs verify with py-ecc (zk.verifier) under the key it made; and the compiler "auto" picks."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures_zk import PARAMS, make_round, updates
from zk.build import CircuitParams, choose_compiler, constraint_count, is_insecure, key_wasm, native_setup
from zk.verifier import VerifyingKey, verify

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def native_artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixtures' tiny round circuit built natively in a fresh folder (~30 s)."""
    return native_setup(PARAMS, tmp_path_factory.mktemp("native"))


def test_native_build_is_circom2_circuit(native_artifacts: Path, zk_artifacts: Path) -> None:
    """Same constraint count as circom2's r1cs, and the witness program in the key is circom2's main.wasm byte
    for byte; the keys are marked insecure like dev_setup's."""
    assert not (native_artifacts / "main.r1cs").exists()
    assert constraint_count(native_artifacts) == constraint_count(zk_artifacts)
    wasm = (zk_artifacts / "main_js" / "main.wasm").read_bytes()
    assert key_wasm(native_artifacts / "dev.pk") == wasm
    assert (native_artifacts / "main_js" / "main.wasm").read_bytes() == wasm
    assert is_insecure(native_artifacts)


def test_native_proof_verifies_with_py_ecc(native_artifacts: Path) -> None:
    """A round proven with the native key (witness from the key's wasm) verifies under its verifying key with the
    round's public input, and not with another."""
    case = make_round(native_artifacts, list(updates(0)))
    vk = VerifyingKey.load(native_artifacts / "verification_key.json")
    assert verify(vk, case.proof, [case.witness.public_input])
    assert not verify(vk, case.proof, [case.witness.public_input + 1])


def test_auto_compiler_by_cost_model() -> None:
    """circom2 for the small circuits it compiles, native past costmodel.WASM_MAX_CONSTRAINTS (n = 16, d = 5130)."""
    assert choose_compiler(PARAMS) == "circom2"
    assert choose_compiler(CircuitParams(n=16, d=5130, f=1, dup_pct=5, floor_pct=10)) == "native"
    assert choose_compiler(PARAMS, "native") == "native"
