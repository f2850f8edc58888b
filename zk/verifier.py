"""Groth16 verification in pure Python with py-ecc: field, curve and subgroup checks, then the pairing."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from py_ecc.fields import optimized_bn128_FQ as FQ
from py_ecc.fields import optimized_bn128_FQ2 as FQ2
from py_ecc.fields import optimized_bn128_FQ12 as FQ12
from py_ecc.optimized_bn128 import (
    add,
    b,
    b2,
    curve_order,
    field_modulus,
    final_exponentiate,
    is_inf,
    is_on_curve,
    multiply,
    neg,
)
from py_ecc.optimized_bn128.optimized_curve import twist
from py_ecc.optimized_bn128.optimized_pairing import cast_point_to_fq12, miller_loop

from market.errors import ProofError
from market.protocol.constants import FIELD_MODULUS
from zk.prover import Proof

G1Point = tuple[FQ, FQ, FQ]
G2Point = tuple[FQ2, FQ2, FQ2]


def _g1(x: int, y: int) -> G1Point:
    """An affine G1 point, checked to be in the field and on the curve (cofactor 1)."""
    if not (0 <= x < field_modulus and 0 <= y < field_modulus):
        raise ProofError("G1 coordinate outside the base field")
    p = (FQ(x), FQ(y), FQ.one())
    if (x, y) == (0, 0) or not is_on_curve(p, b):
        raise ProofError("G1 point not on the curve")
    return p


def _g2(x0: int, x1: int, y0: int, y1: int) -> G2Point:
    """An affine G2 point, checked for field, curve and prime-order subgroup membership."""
    if not all(0 <= c < field_modulus for c in (x0, x1, y0, y1)):
        raise ProofError("G2 coordinate outside the base field")
    p = (FQ2([x0, x1]), FQ2([y0, y1]), FQ2.one())
    if (x0, x1, y0, y1) == (0, 0, 0, 0) or not is_on_curve(p, b2):
        raise ProofError("G2 point not on the curve")
    if not is_inf(multiply(p, curve_order)):
        raise ProofError("G2 point outside the prime-order subgroup")
    return p


@dataclass(frozen=True)
class VerifyingKey:
    """A parsed snarkjs verification_key.json."""

    alpha: G1Point
    beta: G2Point
    gamma: G2Point
    delta: G2Point
    ic: tuple[G1Point, ...]

    @classmethod
    def from_json(cls, vk: dict) -> VerifyingKey:
        """Parse and check a snarkjs verification key; refuse one without a phase-2 contribution."""
        if vk.get("protocol") != "groth16" or vk.get("curve") not in ("bn128", "bn254"):
            raise ProofError("not a BN254 Groth16 verification key")

        def g2(p: list) -> G2Point:
            return _g2(int(p[0][0]), int(p[0][1]), int(p[1][0]), int(p[1][1]))

        key = cls(_g1(int(vk["vk_alpha_1"][0]), int(vk["vk_alpha_1"][1])), g2(vk["vk_beta_2"]),
                  g2(vk["vk_gamma_2"]), g2(vk["vk_delta_2"]),
                  tuple(_g1(int(p[0]), int(p[1])) for p in vk["IC"]))
        if vk["vk_delta_2"][:2] == vk["vk_gamma_2"][:2]:
            raise ProofError("delta == gamma: this key had no phase-2 contribution and is forgeable")
        return key

    @classmethod
    def load(cls, path: Path) -> VerifyingKey:
        """Read verification_key.json."""
        return cls.from_json(json.loads(Path(path).read_text()))


def _pair(q: G2Point, p: G1Point) -> FQ12:
    """Miller loop without the final exponentiation."""
    return miller_loop(twist(q), cast_point_to_fq12(p), final_exponentiate=False)


def verify(vk: VerifyingKey, proof: Proof, public_inputs: list[int]) -> bool:
    """True iff the proof is valid; False on a bad pairing or a malformed proof or input."""
    if len(public_inputs) != len(vk.ic) - 1:
        return False
    if not all(0 <= x < FIELD_MODULUS for x in public_inputs):
        return False
    w = proof.words
    try:
        a = _g1(w[0], w[1])
        bb = _g2(w[3], w[2], w[5], w[4])
        c = _g1(w[6], w[7])
    except ProofError:
        return False
    acc = vk.ic[0]
    for x, pt in zip(public_inputs, vk.ic[1:]):
        acc = add(acc, multiply(pt, x))
    f = _pair(bb, neg(a)) * _pair(vk.beta, vk.alpha) * _pair(vk.gamma, acc) * _pair(vk.delta, c)
    return final_exponentiate(f) == FQ12.one()
