"""Who could cheat on what: every decision of a round, labelled proven, disputable or resting on trust.

Reports name the party a reader must trust for each claim that moves money (issue 11, DESIGN.md's
trust model), so that an owner or a trainer can see at a glance what the proof covers and what not.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class Basis(StrEnum):
    """How a claim is backed."""

    PROVEN = "proven"  # checked by the round's Groth16 proof, verified on chain before any credit
    DISPUTABLE = "disputable"  # the party it hurts can answer it on chain before it settles (PROTOCOL §5)
    AUDITABLE = "auditable"  # anyone with the chain and the IPFS node can recompute and compare
    TRUSTED = "trusted"  # rests on one party's word; named in `party`


@dataclass(frozen=True)
class Claim:
    """One claim a round rests on: what it is, how it is backed, and who could cheat on it."""

    claim: str
    basis: Basis
    party: str
    note: str


#: The claims behind every posted round, in the order a round makes them (PROTOCOL §3-§7).
ROUND_CLAIMS: tuple[Claim, ...] = (
    Claim("slashed (flag 1) and excluded (flag 3) updates, and scores", Basis.PROVEN, "nobody",
          "the circuit recomputes the screens, the direction test, Multi-Krum and the Shapley scores of the "
          "novel inner products from the committed updates; only low updates are slashed"),
    Claim("money split", Basis.PROVEN, "nobody",
          "the contract pays the round budget by max(score, 0), equally when no score is positive, and over the "
          "accepted and excluded equally when at most max(1, N // 4) of their N are accepted"),
    Claim("invalid or unavailable blob (flag 2)", Basis.DISPUTABLE, "aggregator",
          "not proven, so the post waits one post window in which the trainer can cure by publishing its view "
          "on chain; then the aggregator must re-post with it or lose its bond to the round's submitters"),
    Claim("validation direction v", Basis.AUDITABLE, "aggregator and owner",
          "proven normalised, committed (unsalted) before submissions; the validation set is published, so each "
          "trainer node recomputes v before it submits and declines a round committed to another, and "
          "fedmarket audit recomputes it after the fact; the split itself is the owner's choice, and a node "
          "keeps an update against v, so a poisoned split gets no honest blob"),
    Claim("new global model g(r) over the proof view", Basis.PROVEN, "nobody",
          "the circuit proves it is the previous one plus the floored mean of the accepted views"),
    Claim("new global model g(r) outside the proof view", Basis.AUDITABLE, "aggregator",
          "not proven; anyone can average the accepted blobs in storage and compare with g(r) (fedmarket audit)"),
    Claim("soundness of the round proofs", Basis.TRUSTED, "the key ceremony's contributors",
          "Groth16 keys are sound if one contributor to their ceremony was honest; development keys have a single "
          "maker who could forge proofs (docs/ZK.md; trainer join refuses them off a development chain)"),
    Claim("data availability of blobs", Basis.DISPUTABLE, "trainers and aggregator",
          "storage cannot prove that a blob was served; a rejected trainer makes its proof view available on chain "
          "(the rest of a model larger than the view still rests on storage)"),
)


def round_basis(flags: dict[str, int], submitted: set[str]) -> dict[str, str]:
    """Each trainer's decision in one round and its basis: proven (accepted, slashed or excluded), or disputable (flag 2)."""
    shown = {0: "accepted (proven)", 1: "slashed: low update (proven)", 3: "excluded (proven, not slashed)",
             2: "rejected blob (aggregator's claim: disputable, final only if not cured)"}
    return {trainer: shown.get(flag, f"flag {flag}") if trainer in submitted else "absent"
            for trainer, flag in flags.items()}


def trust_table() -> list[dict[str, Any]]:
    """ROUND_CLAIMS as plain dicts, for --json and reports."""
    return [asdict(c) | {"basis": str(c.basis)} for c in ROUND_CLAIMS]
