"""Production path on a small circuit: local ptau, phase-2 contributions, both provers, all verifiers."""

from __future__ import annotations

import json
from pathlib import Path

import groth16py
import pytest
import torch

from market.errors import ConfigError, ProofError
from market.paths import BUILD
from market.protocol.commitment import commit
from market.protocol.quant import QuantSpec
from zk import ceremony
from zk.bench import COMMIT_ONLY_SOURCE
from zk.build import compile_main, is_insecure, run_node
from zk.prover import compute_witness, prove_wtns
from zk.verifier import VerifyingKey, verify


def test_a_ptau_that_is_missing_or_no_ptau_and_a_bad_beacon_are_named_before_snarkjs_runs(tmp_path: Path) -> None:
    """snarkjs' own answer to these is a Node stack trace inside a ToolchainError; a beacon before start was an
    IndexError."""
    with pytest.raises(ConfigError, match=r"--ptau .*missing\.ptau: No such file or directory"):
        ceremony.start(tmp_path, tmp_path / "missing.ptau")
    (tmp_path / "text.ptau").write_text("not a ptau")
    with pytest.raises(ConfigError, match=r"text\.ptau: not a powers-of-tau file"):
        ceremony.finalize(tmp_path, tmp_path / "text.ptau")
    assert not (tmp_path / "ceremony").exists()
    with pytest.raises(ConfigError, match="the beacon is an even number of hex digits"):
        ceremony.beacon(tmp_path, "zz")
    with pytest.raises(ProofError, match=r"no ceremony started in .*: run `fedmarket zk ceremony start` first"):
        ceremony.beacon(tmp_path, "abcd")  # was an IndexError traceback


@pytest.fixture(scope="module")
def ceremony_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A finished two-contribution ceremony over a locally made (insecure) ptau."""
    ptau = ceremony.local_ptau(10, BUILD / "zk" / "ptau" / "local-10.ptau")
    out = tmp_path_factory.mktemp("ceremony")
    compile_main(COMMIT_ONLY_SOURCE, out)
    ceremony.start(out, ptau)
    ceremony.contribute(out, "owner")
    ceremony.contribute(out, "aggregator")
    return ceremony.finalize(out, ptau), ptau


@pytest.mark.slow
def test_initial_zkey_is_refused(ceremony_dir: tuple[Path, Path], tmp_path: Path) -> None:
    out, _ = ceremony_dir
    vk = tmp_path / "vk0.json"
    run_node(["snarkjs", "zkey", "export", "verificationkey", str(out / "ceremony" / "0000.zkey"), str(vk)])
    with pytest.raises(ProofError, match="delta == gamma"):
        VerifyingKey.load(vk)
    VerifyingKey.load(out / "verification_key.json")
    assert is_insecure(out)  # the ptau was made locally


@pytest.mark.slow
def test_both_provers_cross_verify(ceremony_dir: tuple[Path, Path], tmp_path: Path) -> None:
    """groth16py and snarkjs proofs from the same zkey; each accepted by snarkjs, groth16py and py-ecc."""
    out, _ = ceremony_dir
    spec = QuantSpec()
    q = torch.arange(-8, 8) * 1000
    wtns = tmp_path / "w.wtns"
    compute_witness(out, {"o": [int(x) + spec.offset for x in q]}, wtns)
    pub = [commit(q, spec)]
    vk = VerifyingKey.load(out / "verification_key.json")
    gv = groth16py.Verifier(groth16py.VerifyingKey.from_snarkjs_file(str(out / "verification_key.json")))
    (tmp_path / "public.json").write_text(json.dumps([str(pub[0])]))
    for backend in ("groth16py", "snarkjs"):
        proof = prove_wtns(out, wtns, backend)  # type: ignore[arg-type]
        assert verify(vk, proof, pub)
        assert not verify(vk, proof, [pub[0] + 1])
        assert gv.verify(proof.to_bytes(), pub)
        (tmp_path / "proof.json").write_text(json.dumps(proof.to_snarkjs()))
        res = run_node(["snarkjs", "groth16", "verify", str(out / "verification_key.json"),
                        str(tmp_path / "public.json"), str(tmp_path / "proof.json")])
        assert "OK" in res
