"""Circuit inputs for one round, from the aggregator's own integer functions (PROTOCOL §2, §3, §5, §6)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from aggregator.rules.average import fixed_average
from aggregator.rules.clip import clip_inner
from aggregator.rules.novelty import novel_inner
from aggregator.rules.screen import RESIDUAL_BITS, residual_terms, screened_multi_krum, shares
from aggregator.rules.shapley import distances_norms_inner, first_order_shapley, harmonic_parts
from market.errors import ProofError
from market.protocol.commitment import commit, commit_directions
from market.protocol.constants import FIELD_MODULUS
from market.protocol.public_input import Statement, header_values, public_input
from market.protocol.quant import QuantSpec, model_spec
from zk.build import CircuitParams


@dataclass(frozen=True)
class Slot:
    """One trainer slot: its on-chain commitment (0: absent), its quantized proof view and `seq`,
    the 0-based rank of its submission in the round as the marketplace recorded it (PROTOCOL §3, §6).

    `update is None` with a commitment means the blob was invalid (flag 2, the aggregator's claim).
    An absent slot's `seq` is ignored (0 in the public input).
    """

    commitment: int = 0
    update: torch.Tensor | None = None
    seq: int = 0


@dataclass(frozen=True)
class RoundContext:
    """What binds a proof to one round of one project on one chain (PROTOCOL §6)."""

    chain_id: int
    marketplace: str
    project_id: int
    round: int
    n_trainers: int


@dataclass(frozen=True)
class RoundWitness:
    """Circuit inputs plus the round's outcome exactly as the contract will hash it, and the new model's
    fixed-point view with its commitment (PROTOCOL §3)."""

    inputs: dict[str, object]
    public_input: int
    commitments: list[int]
    flags: list[int]
    scores: list[int]
    seqs: list[int]
    model_out: torch.Tensor
    model_commit: int


def _offset(q: torch.Tensor, spec: QuantSpec) -> list[int]:
    """PROTOCOL §1 offset form o = q + 2^(bits-1) as Python ints."""
    return [int(x) + spec.offset for x in q.tolist()]


def build_witness(params: CircuitParams, ctx: RoundContext, v: torch.Tensor, h: torch.Tensor, v_commit: int,
                  slots: list[Slot], model_in: torch.Tensor, model_prev: torch.Tensor) -> RoundWitness:
    """Run the aggregation rule (PROTOCOL §3: copies, norm floor, public span, direction test, Multi-Krum, novelty,
    capped scores, the view's fixed-point average) on the valid slots and lay out every circuit input.
    `v` and `h` are the round's validation direction and split step (§4), `v_commit` their commitment;
    `model_in` and `model_prev` are g(r-1)'s and g(r-2)'s views in fixed point (int64, `model_spec`)."""
    n, d, spec = params.n, params.d, QuantSpec(bits=params.bits)
    mspec = model_spec(spec)
    if len(slots) > n or ctx.n_trainers > n or len(slots) > ctx.n_trainers:
        raise ProofError(f"{len(slots)} slots / {ctx.n_trainers} trainers exceed the circuit's {n}")
    slots = list(slots) + [Slot()] * (n - len(slots))
    if tuple(v.shape) != (d,) or tuple(h.shape) != (d,) or commit_directions(v, h, spec) != v_commit:
        raise ProofError("v and h do not match their commitment or the circuit's view size")
    if d and int(v.abs().max()) != spec.qmax:
        raise ProofError(f"v is not normalised: its largest magnitude must be {spec.qmax} (PROTOCOL §4)")
    valid = [i for i, s in enumerate(slots) if s.commitment != 0 and s.update is not None]
    rows: list[torch.Tensor] = []
    for i in valid:
        u = slots[i].update
        assert u is not None
        if tuple(u.shape) != (d,) or commit(u, spec) != slots[i].commitment:
            raise ProofError(f"slot {i}: the update does not hash to its commitment")
        rows.append(u)
    seqs = [s.seq if s.commitment != 0 else 0 for s in slots]
    for i, q in enumerate(seqs):
        if not 0 <= q < 256:
            raise ProofError(f"slot {i}: submission rank {q} is not a uint8")
    ranks = [seqs[i] for i, s in enumerate(slots) if s.commitment != 0]
    if len(set(ranks)) != len(ranks):
        raise ProofError(f"the slots with a submission need distinct submission ranks, got {seqs}")
    U = torch.stack(rows) if rows else torch.zeros((0, d), dtype=torch.int64)
    dist, nsq, a = distances_norms_inner(U, v)
    for name, m in (("g(r-1)", model_in), ("g(r-2)", model_prev)):
        if tuple(m.shape) != (d,):
            raise ProofError(f"the view of {name} has {tuple(m.shape)} values, the circuit {d}")
    # the previous step, novelty and public-span residuals over every slot as the circuit sees it (empty and
    # invalid slots hold offset 0, i.e. -OFF)
    step = model_in - model_prev
    full = torch.full((n, d), -spec.offset, dtype=torch.int64)
    for r, i in enumerate(valid):
        full[i] = U[r]
    a_all = [int(x) for x in (full * v[None, :]).sum(dim=1).tolist()] if d else [0] * n
    gram = [[int((x * y).sum()) for y in (v, step, h)] for x in (v, step, h)]
    ss, vs = gram[1][1], gram[0][1]
    su_all = [int(x) for x in (full * step[None, :]).sum(dim=1).tolist()]
    nov_all = novel_inner(a_all, full, v, step, su_all)
    hu_all = [int(x) for x in (full * h[None, :]).sum(dim=1).tolist()]
    nsq_all = [int(x) for x in (full * full).sum(dim=1).tolist()]
    terms = residual_terms(nsq_all, list(zip(a_all, su_all, hu_all)), gram)
    res_all = shares(terms)
    rres = [(num << RESIDUAL_BITS) - r * q for (num, q), r in zip(terms, res_all)]
    sk = screened_multi_krum(dist, nsq, a, [seqs[i] for i in valid], params.f, params.m, params.tau_pct,
                             params.dup_pct, params.floor_pct, ctx.n_trainers, [res_all[i] for i in valid])
    kr = sk.krum
    nrem = [ss * x - vs * y - q * ss if ss else 0 for x, y, q in zip(a_all, su_all, nov_all)]
    nov = [nov_all[i] for i in valid]
    capped = clip_inner(nov, sk.accepted)  # PROTOCOL §3's median cap, at the accepted slot of rank |A| // 2
    ranked = sorted((nov[r], r) for r, ok in enumerate(sk.accepted) if ok)
    amed = [0] * n
    if ranked:
        amed[valid[ranked[len(ranked) // 2][1]]] = 1
    sc = first_order_shapley(capped, sk.accepted)

    flags = [2 if s.commitment != 0 and s.update is None else 0 for s in slots]
    scores = [0] * n
    for r, i in enumerate(valid):
        flags[i] = sk.flags[r]
        scores[i] = sc[r]
    # the floor's lower median (a hint only when the circuit has the floor)
    med = [0] * n
    if params.floor_pct > 0 and sk.median is not None:
        med[valid[sk.median]] = 1
    pmed = [0] * n
    if sk.public_median is not None:
        pmed[valid[sk.public_median]] = 1
    # Krum hints over the members of K only (copies and low updates take no part, like invalid slots)
    nb = [[0] * n for _ in range(n)]
    kth, sel, ref = [0] * n, [0] * n, [0] * n
    dl = dist.tolist()
    members = [valid[r] for r in sk.members]
    for p, i in enumerate(members):
        r = sk.members[p]
        sel[i] = int(kr.selected[p])
        near = sorted((dl[r][sk.members[c]], c) for c in range(len(members)) if c != p)[: kr.k]
        for _, c in near:
            nb[i][members[c]] = 1
        kth[i] = near[-1][0] if near else 0
    if members:
        ref[members[kr.order[kr.m_eff - 1]]] = 1
    n_acc = sum(sk.accepted)
    total = U[torch.tensor(sk.accepted, dtype=torch.bool)].sum(dim=0) if n_acc else torch.zeros(d, dtype=torch.int64)
    model_out = fixed_average(model_in, total, n_acc, spec)
    m_rem = total - (model_out - model_in) * max(n_acc, 1)
    st = Statement(ctx.chain_id, ctx.marketplace, ctx.project_id, ctx.round, v_commit,
                   commit(model_prev, mspec), commit(model_in, mspec), commit(model_out, mspec), ctx.n_trainers)
    rem = _remainders(capped, sk.accepted, sc)
    rems = [0] * n
    for r, i in enumerate(valid):
        rems[i] = rem[r]

    commitments = [s.commitment for s in slots]
    t = ctx.n_trainers
    pub = public_input(st, n, commitments[:t], flags[:t], scores[:t], seqs[:t])
    zero = [0] * d
    # The public signals carry §6's fields under their names in public_input.HEADER and SLOT.
    inputs: dict[str, object] = {
        **header_values(st),
        "v": _offset(v, spec),
        "h": _offset(h, spec),
        "mPrev": _offset(model_prev, mspec),
        "mIn": _offset(model_in, mspec),
        "mOut": _offset(model_out, mspec),
        "mRem": [int(x) for x in m_rem.tolist()],
        "commitment": commitments,
        "flag": flags,
        "score": [s % FIELD_MODULUS for s in scores],
        "seq": seqs,
        "u": [_offset(s.update, spec) if i in valid and s.update is not None else zero
              for i, s in enumerate(slots)],
        "nb": nb,
        "kth": kth,
        "sel": sel,
        "ref": ref,
        "med": med,
        "amed": amed,
        "rem": rems,
        "nov": [x % FIELD_MODULUS for x in nov_all],
        "nrem": nrem,
        "res": res_all,
        "rres": rres,
        "pmed": pmed,
    }
    return RoundWitness(inputs, pub, commitments, flags, scores, seqs, model_out, st.model_out)


def _remainders(a: list[int], accepted: list[bool], scores: list[int]) -> list[int]:
    """`N_i - score_i * D_n` of PROTOCOL §3 for each valid update (0 when not accepted)."""
    idx = [i for i, ok in enumerate(accepted) if ok]
    n = len(idx)
    out = [0] * len(a)
    if n < 2:
        return out
    q, p = harmonic_parts(n)
    s = sum(a[i] for i in idx)
    den = n * (n - 1) * q
    for i in idx:
        out[i] = (n - 1) * q * a[i] + (n * a[i] - s) * p - scores[i] * den
    return out
