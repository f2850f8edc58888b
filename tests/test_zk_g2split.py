"""zk.g2split: a development key split into its G2 query and the rest proves the same statement, loads without
the G2 checks, and a wrong G2 sum is caught by the verifier."""

from __future__ import annotations

import shutil
import struct
import tempfile
from pathlib import Path

import pytest
from py_ecc import optimized_bn128 as bn

from market.errors import ProofError
from tests.fixtures_zk import PARAMS, RoundCase
from zk import g2split
from zk.build import dev_setup
from zk.prover import Proof, compute_witness, prove_wtns, proving_key_path
from zk.verifier import VerifyingKey, verify


@pytest.fixture(scope="module")
def split_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the test circuit's development folder, with dev.pk alone (its split made by the prover)."""
    out = tmp_path_factory.mktemp("split") / "keys"
    shutil.copytree(dev_setup(PARAMS), out, ignore=shutil.ignore_patterns(g2split.G1_KEY, g2split.B2_BASES, ".*"))
    return out


def test_the_split_keeps_every_point_but_the_g2_query(split_folder: Path) -> None:
    raw = (split_folder / "dev.pk").read_bytes()
    key, bases = g2split.split(raw)
    start, count = g2split.b2_query(raw)
    assert len(key) == len(raw) and len(bases) == 128 * count
    assert key[:start] == raw[:start] and key[start + 128 * count :] == raw[start + 128 * count :]
    points = [key[start + 128 * i : start + 128 * (i + 1)] for i in range(count)]
    assert all(p == bytes(127) + b"\x40" for p in points)  # every G2 point at infinity
    nonzero = sum(bases[128 * i : 128 * (i + 1)] != bytes(128) for i in range(count))
    assert 0 < nonzero == sum(not raw[start + 128 * i + 127] & 0x40 for i in range(count))
    with pytest.raises(ProofError, match="g16pk1"):
        g2split.b2_query(b"not a key")


def test_a_split_key_proves_what_dev_pk_proves(split_folder: Path, honest_round: RoundCase) -> None:
    witness = honest_round.witness
    vk = VerifyingKey.load(split_folder / "verification_key.json")
    with tempfile.TemporaryDirectory() as tmp:
        wtns = Path(tmp) / "round.wtns"
        compute_witness(split_folder, witness.inputs, wtns)
        proof = prove_wtns(split_folder, wtns)  # splits dev.pk on first use
        assert proving_key_path(split_folder).name == g2split.G1_KEY and (split_folder / g2split.B2_BASES).exists()
        assert verify(vk, proof, [witness.public_input])
        assert proof != honest_round.proof  # fresh randomness: another proof of the same statement
        child = g2split.start_b2_sum(split_folder, wtns)
        total = g2split.b2_sum(child)
    without = Proof(g2split.add_to_b(proof.words, bn.neg(total)))  # what groth16py alone gives with dev.g1.pk
    assert not verify(vk, without, [witness.public_input])
    doubled = Proof(g2split.add_to_b(proof.words, total))
    assert not verify(vk, doubled, [witness.public_input])
    count = (split_folder / g2split.B2_BASES).stat().st_size // 128
    assert count > g2split.CHUNK // 4  # so that the chunks below are several, the last one short
    with tempfile.TemporaryDirectory() as tmp:
        wtns = Path(tmp) / "round.wtns"
        compute_witness(split_folder, witness.inputs, wtns)
        chunked = g2split.b2_sum(g2split.start_b2_sum(split_folder, wtns, chunk=count // 3 + 7))
        whole = g2split.b2_sum(g2split.start_b2_sum(split_folder, wtns, chunk=count))
    assert bn.eq(chunked, total) and bn.eq(whole, total)


def _wtns(values: list[int]) -> bytes:
    """A .wtns file (circom's format: section 1 the field, section 2 the values) holding `values`."""
    header = struct.pack("<I", 32) + bn.curve_order.to_bytes(32, "little") + struct.pack("<I", len(values))
    body = b"".join(v.to_bytes(32, "little") for v in values)
    return b"wtns" + struct.pack("<II", 2, 2) + struct.pack("<IQ", 1, len(header)) + header + \
        struct.pack("<IQ", 2, len(body)) + body


def test_the_g2_sum_of_every_kind_of_term(tmp_path: Path) -> None:
    """A hand-made sum_i w_i (k_i G2) against py-ecc's (sum_i w_i k_i) G2: zero scalars and bases at infinity
    dropped, scalars of one, eight and 32 bytes, and negative ones (r - |x|), in chunks that split the groups."""
    r = bn.curve_order
    terms = [(0, 5), (1, 7), (1, 0), (200, 11), (2**40 + 3, 13), (r - 1, 17), (r - 5, 19), (2**200 + 7, 23),
             (r - 2**100, 29), (r // 2 + 1, 31), (12345, 0), (1, 37)]  # (w_i, k_i); k_i = 0: the point at infinity
    bases = b"".join(bytes(128) if k == 0 else g2split.ffjs_base([int(c) for p in bn.normalize(bn.multiply(bn.G2, k))
                                                                    for c in p.coeffs]) for _, k in terms)
    folder = tmp_path / "keys"
    folder.mkdir()
    (folder / g2split.B2_BASES).write_bytes(bases)
    wtns = tmp_path / "w.wtns"
    wtns.write_bytes(_wtns([w for w, _ in terms] + [99, 98]))  # a witness may be longer than the bases
    want = bn.multiply(bn.G2, sum(w * k for w, k in terms) % r)
    for chunk in (1, 3, 5, len(terms), 10**9):
        assert bn.eq(g2split.b2_sum(g2split.start_b2_sum(folder, wtns, chunk=chunk)), want), chunk
    wtns.write_bytes(_wtns([0] * len(terms)))
    assert g2split.b2_sum(g2split.start_b2_sum(folder, wtns)) == bn.Z2


def test_a_failed_g2_sum_names_itself(split_folder: Path, tmp_path: Path) -> None:
    g2split.ensure_split(split_folder)
    bad = tmp_path / "bad.wtns"
    bad.write_bytes(b"nope")
    with pytest.raises(ProofError, match=r"G2 sum failed \(exit 1\): .*bad\.wtns is not a \.wtns file"):
        g2split.b2_sum(g2split.start_b2_sum(split_folder, bad))
    with pytest.raises(ProofError, match="chunk size 0 is not a positive integer"):
        g2split.b2_sum(g2split.start_b2_sum(split_folder, bad.with_name("unused.wtns"), chunk=0))
