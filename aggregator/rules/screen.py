"""Multi-Krum with the screens of docs/PROTOCOL.md §3: copies, the norm floor, the public span and the direction test.

Pure functions on exact integers. A copy is an update within `dup_pct`% relative squared distance
of one submitted before it; of the rest, an update whose squared norm is below `floor_pct`% of
their (lower) median is low. A low update is not an honest one: it is slashed (flag 1). A copy is
excluded (flag 3), not slashed: rounds are sealed, so nobody reads a round's update before committing
its own, and the later of two near-copies can be an honest update whose author's last one someone
replayed and committed first (`grief_replay`). Of the rest, an update that lies within the public directions
(its share of squared norm off the span of v and the previous proven step below `PUBLIC_PCT`% of the lower median
share: what anyone could send without training) is excluded; then an update that does not move along the
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
from market.errors import AggregationError

#: The public-span screen (PROTOCOL §3): an update whose share of its squared norm off the span of v and the previous
#: step is below this percentage of the round's lower median share is excluded. Protocol constants, built into the
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


def residuals(nsq: Sequence[int], a: Sequence[int], su: Sequence[int], vv: int, vs: int, ss: int) -> list[int]:
    """Each update's share of its squared norm off the span of v and the previous step s, in fixed point:
    `floor(2^RESIDUAL_BITS * num_i / q_i)` with `q_i = det nsq(i)`, `num_i = q_i - (ss a_i^2 - 2 vs a_i su_i +
    vv su_i^2)`, `det = vv ss - vs^2` the span's Gram determinant, `a_i = <v, u_i>` and `su_i = <s, u_i>`; when
    `det = 0` (round 1, or s along v) the span is v's: `q_i = vv nsq(i)`, `num_i = q_i - a_i^2`. A zero update
    counts as wholly off the span (`2^RESIDUAL_BITS`). Exact integers, as the circuit computes them."""
    return [1 << RESIDUAL_BITS if q == 0 else (num << RESIDUAL_BITS) // q for num, q in residual_terms(nsq, a, su, vv, vs, ss)]


def residual_terms(nsq: Sequence[int], a: Sequence[int], su: Sequence[int], vv: int, vs: int, ss: int) -> list[tuple[int, int]]:
    """`(num_i, q_i)` of `residuals` for each update (the prover's witness needs both)."""
    if not len(nsq) == len(a) == len(su):
        raise AggregationError(f"need one squared norm, a_i and su_i per update (got {len(nsq)}, {len(a)}, {len(su)})")
    det = vv * ss - vs * vs
    out = []
    for n, ai, bi in zip(nsq, a, su):
        if det:
            q = det * int(n)
            out.append((q - (ss * int(ai) ** 2 - 2 * vs * int(ai) * int(bi) + vv * int(bi) ** 2), q))
        else:
            out.append((vv * int(n) - int(ai) ** 2, vv * int(n)))
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
