"""Multi-Krum with the screens of docs/PROTOCOL.md §3: copies, the norm floor, the public span and the direction test.

Pure functions on exact integers. A copy is an update within `dup_pct`% relative squared distance
of one submitted before it; of the rest, an update whose squared norm is below `floor_pct`% of
their (lower) median is low. A low update is not an honest one: it is slashed (flag 1). A copy is
excluded (flag 3), not slashed: rounds are sealed, so nobody reads a round's update before committing
its own, and the later of two near-copies can be an honest update whose author's last one someone
replayed and committed first (`grief_replay`). Of the rest, an update that lies within the public directions
(its share of squared norm off the span of v, the previous proven step and the split step below `PUBLIC_PCT`% of
the lower median share: what anyone could send without training data of its own) is excluded; then an update that does not move along the
validation direction (`a_i = <v, u_i> <= 0`) is excluded, and Multi-Krum runs on what remains; its
outliers are excluded too. An excluded update (flag 3) is left out of the average and unpaid, but not
slashed: non-IID data, a replay of its author's last update or colluders pushing it out of the selected
set can put an honest update there. Screening before Multi-Krum matters:
zero updates sit at the centre of the honest cloud, and colluders inside it against v (inner-product
manipulation) would crowd the selection. The prover's witness and the aggregator both decide with
`screened_multi_krum`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from aggregator.rules.krum import KrumResult, multi_krum
from aggregator.rules.shapley import inner_products
from market.errors import AggregationError

#: The public-span screen (PROTOCOL §3): an update whose share of its squared norm off the span of v, the previous
#: step and the split step is below this percentage of the round's lower median share is excluded. Protocol constants, built into the
#: round circuit: the threshold, and the fixed-point bits of the share.
PUBLIC_PCT = 40
RESIDUAL_BITS = 20


@dataclass(frozen=True)
class ScreenedKrum:
    """One round's decision over n valid updates (lists in their order).

    `median` is the index of the median update among the non-copies (None if there is none). `public` marks
    the updates that passed both screens but lie within the public directions, against the residual of the update
    `public_median` (None without the screen, or when nothing passed both); `against` those
    that passed these but not the direction test. `members` are the indices in the Krum set (no copy, not low,
    not public, along v; increasing); `krum` is Multi-Krum over them, its lists indexed by position in `members`.
    """

    copy: list[bool]
    median: int | None
    low: list[bool]
    public_median: int | None
    public: list[bool]
    against: list[bool]
    members: list[int]
    krum: KrumResult
    outlier: list[bool]

    @property
    def accepted(self) -> list[bool]:
        """Valid and not an outlier."""
        return [not o for o in self.outlier]

    @property
    def slashed(self) -> list[bool]:
        """A low update: not an honest update (flag 1, slashed)."""
        return list(self.low)

    @property
    def flags(self) -> list[int]:
        """PROTOCOL §5 flags: 0 accepted, 1 slashed (low), 3 excluded (copy, public span, direction test, Multi-Krum)."""
        return [1 if s else (3 if o else 0) for s, o in zip(self.slashed, self.outlier)]

    @property
    def selected(self) -> list[bool]:
        """Selected by Multi-Krum (n-long)."""
        out = [False] * len(self.copy)
        for pos, i in enumerate(self.members):
            out[i] = self.krum.selected[pos]
        return out


def copies(dist: Sequence[Sequence[int]], nsq: Sequence[int], seq: Sequence[int], dup_pct: int) -> list[bool]:
    """`i` is a copy if an earlier `j` (seq) has `100 * dist(i, j) < dup_pct * nsq(j)`."""
    n = len(nsq)
    if len(seq) != n or len(dist) != n or len(set(seq)) != n:
        raise AggregationError(f"need n distinct submission ranks and an [n, n] distance matrix (n = {n})")
    return [
        dup_pct > 0 and any(seq[j] < seq[i] and 100 * int(dist[i][j]) < dup_pct * int(nsq[j]) for j in range(n))
        for i in range(n)
    ]


def span_basis(gram: Sequence[Sequence[int]]) -> tuple[int, list[list[int]]]:
    """`(det, adj)` of the public span's basis (PROTOCOL §3), from the Gram matrix of (v, s, h) (3 x 3 integers): the
    basis is v, then s if it adds a dimension (`det(v, s) != 0`), then h if it adds one; `det` is the basis's Gram
    determinant and `adj` its adjugate, laid out in (v, s, h) order with zeros for the vectors left out."""
    (vv, vs, vh), (_, ss, sh), (_, _, hh) = ([int(x) for x in row] for row in gram)
    d2, e2 = vv * ss - vs * vs, vv * hh - vh * vh
    if d2:
        adj = [[ss * hh - sh * sh, vh * sh - vs * hh, vs * sh - ss * vh],
               [vh * sh - vs * hh, e2, vs * vh - vv * sh],
               [vs * sh - ss * vh, vs * vh - vv * sh, d2]]
        d3 = vv * adj[0][0] + vs * adj[0][1] + vh * adj[0][2]
        return (d3, adj) if d3 else (d2, [[ss, -vs, 0], [-vs, vv, 0], [0, 0, 0]])
    if e2:
        return e2, [[hh, 0, -vh], [0, 0, 0], [-vh, 0, vv]]
    return vv, [[1, 0, 0], [0, 0, 0], [0, 0, 0]]


def public_span(
    U: torch.Tensor, v: torch.Tensor, a: Sequence[int], step: torch.Tensor | None, split: torch.Tensor | None,
    hu: Sequence[int] | None = None,
) -> tuple[list[list[int]], list[list[int]]]:
    """`(cross, gram)` for `residuals`: per row of the proof views `U` (int64 [n, d]) its inner products with v
    (`a`, already computed), the previous step and the split step (`hu`, when already computed), and the Gram matrix
    of (v, s, h); a missing or zero s or h contributes zeros (round 1 has no step)."""
    n = U.shape[0]
    vecs = [v] + [torch.zeros_like(v) if x is None else x.to(v.device) for x in (step, split)]
    live = [True] + [bool(x.any()) for x in vecs[1:]]
    su = inner_products(U, vecs[1]) if live[1] else [0] * n
    hu = list(hu) if hu is not None else inner_products(U, vecs[2]) if live[2] else [0] * n
    gram = [[inner_products(x[None, :], y)[0] if live[j] and live[k] else 0 for k, y in enumerate(vecs)]
            for j, x in enumerate(vecs)]
    return [[int(x), y, z] for x, y, z in zip(a, su, hu)], gram


def residuals(nsq: Sequence[int], cross: Sequence[Sequence[int]], gram: Sequence[Sequence[int]]) -> list[int]:
    """Each update's share of its squared norm off the public span of v, the previous step s and the split step h,
    in fixed point: `floor(2^RESIDUAL_BITS * num_i / q_i)` with `(num_i, q_i)` of `residual_terms`. A zero update
    counts as wholly off the span (`2^RESIDUAL_BITS`). Exact integers, as the circuit computes them."""
    return shares(residual_terms(nsq, cross, gram))


def shares(terms: Sequence[tuple[int, int]]) -> list[int]:
    """`floor(2^RESIDUAL_BITS * num / q)` of each `(num, q)`, `2^RESIDUAL_BITS` when `q = 0`."""
    return [1 << RESIDUAL_BITS if q == 0 else (num << RESIDUAL_BITS) // q for num, q in terms]


def residual_terms(nsq: Sequence[int], cross: Sequence[Sequence[int]], gram: Sequence[Sequence[int]]) -> list[tuple[int, int]]:
    """`(num_i, q_i)` per update: `q_i = det nsq(i)` and `num_i = q_i - c_i^T adj c_i` (`span_basis`), the Gram
    determinant of the basis and `u_i` (>= 0), with `c_i = (<v, u_i>, <s, u_i>, <h, u_i>)` the rows of `cross`."""
    if len(nsq) != len(cross) or any(len(c) != 3 for c in cross):
        raise AggregationError(f"need one squared norm and three inner products per update (got {len(nsq)}, {len(cross)})")
    det, adj = span_basis(gram)
    out = []
    for n, c in zip(nsq, cross):
        ci = [int(x) for x in c]
        q = det * int(n)
        out.append((q - sum(adj[j][k] * ci[j] * ci[k] for j in range(3) for k in range(3)), q))
    return out


def lower_median(nsq: Sequence[int], among: Sequence[bool]) -> int | None:
    """Index of the element of rank (c - 1) // 2 among the c chosen, by (nsq, index); None if c = 0."""
    chosen = sorted((int(nsq[i]), i) for i, ok in enumerate(among) if ok)
    return chosen[(len(chosen) - 1) // 2][1] if chosen else None


def below_floor(nsq: Sequence[int], among: Sequence[bool], floor_pct: int) -> tuple[int | None, list[bool]]:
    """(median index, flags): chosen `i` with `100 * nsq(i) < floor_pct * nsq(median)`."""
    med = lower_median(nsq, among)
    ref = 0 if med is None else int(nsq[med])
    return med, [floor_pct > 0 and ok and 100 * int(x) < floor_pct * ref for x, ok in zip(nsq, among)]


def screened_multi_krum(
    dist: torch.Tensor, nsq: Sequence[int], a: Sequence[int], seq: Sequence[int], f: int, m: int, tau_pct: int,
    dup_pct: int, floor_pct: int, joined: int | None = None, residual: Sequence[int] | None = None,
    public_pct: int = PUBLIC_PCT,
) -> ScreenedKrum:
    """PROTOCOL §3 outlier decision: copies, then the norm floor, then the public-span screen (the updates' `residuals`,
    against `public_pct`% of their lower median; default: no screen), then the direction test `a_i > 0`, then
    Multi-Krum on the rest, its `k` and `m_eff` counted on the `joined` trainers (default: the n updates)."""
    if dup_pct < 0 or floor_pct < 0:
        raise AggregationError(f"dup_pct and floor_pct must be >= 0 (got {dup_pct}, {floor_pct})")
    if len(a) != len(nsq):
        raise AggregationError(f"need one inner product a_i per update (got {len(a)} for {len(nsq)})")
    if joined is not None and joined < len(nsq):
        raise AggregationError(f"{len(nsq)} updates from {joined} joined trainers")
    if residual is not None and len(residual) != len(nsq):
        raise AggregationError(f"need one residual per update (got {len(residual)} for {len(nsq)})")
    copy = copies(dist.tolist(), nsq, seq, dup_pct)
    med, low = below_floor(nsq, [not c for c in copy], floor_pct)
    among = [not c and not lo for c, lo in zip(copy, low)]
    pmed, pub = below_floor([0] * len(nsq) if residual is None else residual, among, 0 if residual is None else public_pct)
    against = [not c and not lo and not p and int(ai) <= 0 for c, lo, p, ai in zip(copy, low, pub, a)]
    members = [i for i in range(len(copy)) if not (copy[i] or low[i] or pub[i] or against[i])]
    idx = torch.tensor(members, dtype=torch.long, device=dist.device)
    kr = multi_krum(dist.index_select(0, idx).index_select(1, idx), f, m, tau_pct, len(nsq) if joined is None else joined)
    outlier = [c or lo or p or ag for c, lo, p, ag in zip(copy, low, pub, against)]
    for pos, i in enumerate(members):
        outlier[i] = kr.outlier[pos]
    return ScreenedKrum(copy, med, low, pmed if residual is not None else None, pub, against, members, kr, outlier)
