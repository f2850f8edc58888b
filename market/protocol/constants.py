"""Protocol constants, defined once: the BN254 scalar field, the units of money and the few-accepted rule.

The field modulus is checked against py_ecc's curve order at import, so that the commitments,
the public input and the verifier can never disagree on the field they work in.
"""

from __future__ import annotations

from py_ecc.bn128 import curve_order

#: BN254 scalar field r: Poseidon, the circuit's signals and the Groth16 public input live in it.
FIELD_MODULUS = 21888242871839275222246405745257275088548364400416034343698204186575808495617
#: Wei in one ether (and in one whole unit of an 18-decimal token).
ETHER = 10**18
#: PROTOCOL §7: a round with excluded slots that accepts at most max(1, N // FEW_ACCEPTED_DIVISOR) of its N accepted
#: and excluded slots pays them all equally (FedMarket.FEW_ACCEPTED_DIVISOR).
FEW_ACCEPTED_DIVISOR = 4

if curve_order != FIELD_MODULUS:  # pragma: no cover - a broken py_ecc or a typo here
    raise ImportError("market.protocol.constants: FIELD_MODULUS differs from py_ecc's BN254 curve order")
