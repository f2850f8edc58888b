"""Shared helpers for the zero-knowledge tests: a tiny round circuit, its dev keys and round data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from market.protocol.commitment import commit, commit_directions
from market.protocol.public_input import FIELD_MODULUS as R
from market.protocol.public_input import Statement, public_input
from market.protocol.quant import QuantSpec, model_spec
from zk.build import CircuitParams, dev_setup
from zk.prover import Proof, prove
from zk.witness import RoundContext, RoundWitness, Slot, build_witness

#: n = 4 slots, a 16-value view, Multi-Krum with f = 1 (k = 1, m_eff = n0 - 1), the copy rule at
#: dup_pct = 5 and the norm floor at floor_pct = 10 (the aggregator's defaults): ~130k constraints.
PARAMS = CircuitParams(n=4, d=16, f=1, dup_pct=5, floor_pct=10)
SPEC = QuantSpec(bits=PARAMS.bits)
TAMPERED = ["score", "flag", "seq", "commitment", "round", "project", "chain id", "marketplace", "v commitment",
            "model in", "model out"]
CTX = RoundContext(chain_id=31337, marketplace="0x" + "ab" * 20, project_id=7, round=3, n_trainers=4)


@dataclass(frozen=True)
class RoundCase:
    """A proven round: its data, witness and proof."""

    v: torch.Tensor
    h: torch.Tensor
    v_commit: int
    slots: list[Slot]
    witness: RoundWitness
    proof: Proof


def updates(seed: int, poisoned: tuple[int, ...] = (3,)) -> list[torch.Tensor]:
    """Honest small updates around a common direction; `poisoned` slots scaled far away."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randint(-400, 400, (PARAMS.d,), generator=g)
    out = [base + torch.randint(-60, 60, (PARAMS.d,), generator=g) for _ in range(PARAMS.n)]
    for i in poisoned:
        out[i] = (40 * out[i]).clamp(-SPEC.qmax, SPEC.qmax)
    return out


def direction(seed: int) -> torch.Tensor:
    """A quantized validation direction, normalised as PROTOCOL §4's (its largest magnitude is qmax): the common
    direction of `updates(seed)` with noise, so honest updates move along it (a_i > 0) and poisoned ones against."""
    base = torch.randint(-400, 400, (PARAMS.d,), generator=torch.Generator().manual_seed(seed))
    noise = torch.randint(-200, 200, (PARAMS.d,), generator=torch.Generator().manual_seed(seed + 1000))
    x = (base + noise).to(torch.float64)
    return torch.round(x * SPEC.qmax / x.abs().max()).to(torch.int64)


def split(seed: int) -> torch.Tensor:
    """A quantized split step (PROTOCOL §4), normalised as v: another direction, off `updates(seed)`'s common one."""
    x = torch.randint(-400, 400, (PARAMS.d,), generator=torch.Generator().manual_seed(seed + 2000)).to(torch.float64)
    return torch.round(x * SPEC.qmax / x.abs().max()).to(torch.int64)


def with_split(v: torch.Tensor, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, int]:
    """`build_witness`'s (v, h, vCommit) for the direction `v`, with the split step `split(seed)`."""
    h = split(seed)
    return v, h, commit_directions(v, h, SPEC)


#: g(r-1)'s proof view in fixed point (PROTOCOL §3), the model the test rounds start from.
MODEL_IN = torch.arange(PARAMS.d, dtype=torch.int64) * 301 - 2_000
#: g(r-2)'s view: the previous step MODEL_IN - MODEL_PREV is not zero, so the novelty of §3 is exercised
MODEL_PREV = MODEL_IN - torch.arange(PARAMS.d, dtype=torch.int64) * 23 + 170


def round_slots(ups: list[torch.Tensor | None], seed: int = 0, absent: tuple[int, ...] = (),
                order: list[int] | None = None) -> list[Slot]:
    """Slots of one round; `None` updates are invalid blobs (flag 2). The slots submitted in `order`
    (default: slot order), so each present slot's seq is its rank there, as the contract counts it."""
    present = [i for i in range(len(ups)) if i not in absent]
    rank = {i: r for r, i in enumerate(order if order is not None else present)}
    slots = []
    for i, u in enumerate(ups):
        if i in absent:
            slots.append(Slot())
        elif u is None:
            slots.append(Slot(commitment=commit(updates(seed + 1)[i], SPEC), seq=rank[i]))
        else:
            slots.append(Slot(commit(u, SPEC), u, rank[i]))
    return slots


def make_round(out: Path, ups: list[torch.Tensor | None], ctx: RoundContext = CTX, seed: int = 0,
               absent: tuple[int, ...] = ()) -> RoundCase:
    """Commit, witness and prove one round; `None` updates are invalid blobs (flag 2)."""
    v, h = direction(seed), split(seed)
    vc = commit_directions(v, h, SPEC)
    slots = round_slots(ups, seed, absent)
    w = build_witness(PARAMS, ctx, v, h, vc, slots, MODEL_IN, MODEL_PREV)
    return RoundCase(v, h, vc, slots, w, prove(out, w.inputs))


def public_data(case: RoundCase, **change: Any) -> int:
    """The public input of `case` with some of its fields (Statement's or the slots') changed."""
    st = dict(chain_id=CTX.chain_id, marketplace=CTX.marketplace, pid=CTX.project_id, round=CTX.round,
              v_commit=case.v_commit, model_prev=commit(MODEL_PREV, model_spec(SPEC)),
              model_in=commit(MODEL_IN, model_spec(SPEC)), model_out=case.witness.model_commit,
              n_trainers=CTX.n_trainers)
    rows = dict(commitments=case.witness.commitments, flags=case.witness.flags, scores=case.witness.scores,
                seqs=case.witness.seqs)
    st.update({k: v for k, v in change.items() if k in st})
    rows.update({k: v for k, v in change.items() if k in rows})
    return public_input(Statement(**st), PARAMS.n, **rows)


def tampered(case: RoundCase) -> dict[str, dict[str, object]]:
    """Each way of changing the round's public data, as public_data() overrides."""
    w = case.witness
    scores, flags, comms, seqs = list(w.scores), list(w.flags), list(w.commitments), list(w.seqs)
    scores[0] += 1
    flags[3] = 0
    comms[1] = (comms[1] + 1) % R
    seqs[0], seqs[1] = seqs[1], seqs[0]  # another submission order
    return {
        "score": {"scores": scores},
        "flag": {"flags": flags},
        "seq": {"seqs": seqs},
        "commitment": {"commitments": comms},
        "round": {"round": CTX.round + 1},  # also: the proof replayed in the next round
        "project": {"pid": CTX.project_id + 1},
        "chain id": {"chain_id": 1},
        "marketplace": {"marketplace": "0x" + "cd" * 20},
        "v commitment": {"v_commit": case.v_commit + 1},
        "model prev": {"model_prev": commit(MODEL_PREV + 1, model_spec(SPEC))},  # another g(r-2): other novelty
        "model in": {"model_in": commit(MODEL_IN + 1, model_spec(SPEC))},  # another g(r-1)
        "model out": {"model_out": (w.model_commit + 1) % R},  # another g(r)
    }


@pytest.fixture(scope="session")
def zk_artifacts() -> Path:
    """Compiled tiny round circuit with development keys (cached under build/zk)."""
    return dev_setup(PARAMS)


@pytest.fixture(scope="session")
def honest_round(zk_artifacts: Path) -> RoundCase:
    """Three honest trainers and one poisoned one (slot 3)."""
    return make_round(zk_artifacts, list(updates(0)))
