"""Replays (PROTOCOL §3): an update near another trainer's update of a recent round.

Pure functions on exact integers, as ReplayChallenge.sol decides: `u` replays `w` when
`100 |u - w|^2 <= REPLAY_PCT min(|u|^2, |w|^2)` (a copy plus noise), or when `<u, w> > 0` and
`100 <u, w>^2 >= LINE_PCT |u|^2 |w|^2` (a copy at another scale: a copy shrunk to 0.6 lies 0.44 away in the first
measure, about where its author's next update lies as honest norms shrink, so that an accepted shrunk copy took
that author's next update out as its replay). A replay is taken out of its round on chain (the challenge publishes
both proof views), so the round counts it as absent: not paid, not slashed. Only another trainer's update is a source:
a trainer's own update lies near its last one when its data pulls the same way every round (0.023 to 2.4 in the eval's
clean runs, median 0.21), which is no replay. Only an update its round accepted is a source (a settled round keeps
the accepted commitments only): a replay taken out, or a copy excluded, of a trainer's work cannot be cited against
that trainer's later updates. A source is an update of one of the
`LOOKBACK` rounds before, on chain as in the aggregator node, which challenges every replay there before it proves:
nobody can take a slot out after it did. A replay of a trainer that sat rounds out (or of a rider's own last update,
itself a replay) finds its source there.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from aggregator.rules.shapley import sq_norms
from market.errors import AggregationError

#: ReplayChallenge.REPLAY_PCT: honest updates of different trainers lay at least 1.0 apart across consecutive rounds of
#: the eval's clean runs (scripts/replays.py); a replay with noise of a quarter of its norm lies about 0.06 from its source.
REPLAY_PCT = 25
#: ReplayChallenge.LINE_PCT: an update whose squared cosine with a source is at least 90 % lies along it at any scale
#: (a rescaled replay); honest updates of different trainers reached 0.81 when each trainer's data is nearly one class
#: (Dirichlet alpha 0.1), 0.50 at the eval's 0.5 (scripts/replays.py --alpha).
LINE_PCT = 90
#: ReplayChallenge.REPLAY_LOOKBACK: the rounds before the challenged one whose updates are sources.
LOOKBACK = 4


def replay_terms(u: torch.Tensor, w: torch.Tensor) -> tuple[int, int, int]:
    """`(|u - w|^2, |u|^2, |w|^2)` of two int64 proof views, exactly."""
    if u.dtype != torch.int64 or w.dtype != torch.int64 or u.shape != w.shape or u.dim() != 1:
        raise AggregationError(f"a replay compares two int64 views of one length, got {u.dtype} {tuple(u.shape)} "
                               f"and {w.dtype} {tuple(w.shape)}")
    dist, nu, nw = sq_norms(torch.stack([u - w, u, w]))
    return dist, nu, nw


def near(dist: int, nu: int, nw: int) -> bool:
    """Whether `u` lies near `w` (given `|u - w|^2`, `|u|^2`, `|w|^2`): within `REPLAY_PCT` of the smaller squared
    norm, or along `w`'s line at any scale (`<u, w> > 0` and `100 <u, w>^2 >= LINE_PCT |u|^2 |w|^2`)."""
    if 100 * dist <= REPLAY_PCT * min(nu, nw):
        return True
    twice_ip = nu + nw - dist  # 2 <u, w>, exact
    return twice_ip > 0 and 100 * twice_ip * twice_ip >= 4 * LINE_PCT * nu * nw


def is_replay(u: torch.Tensor, w: torch.Tensor) -> bool:
    """Whether `u` replays `w`: it lies `near` `w`."""
    return near(*replay_terms(u, w))


def find_replays(now: Mapping[int, torch.Tensor], sources: Mapping[tuple[int, int], torch.Tensor]) -> dict[int, tuple[int, int]]:
    """The replays of a round: slot -> the (round, slot) of an earlier update of another slot that it replays, the
    latest such round first, then the lowest slot. `sources` holds the earlier rounds' accepted updates, by (round,
    slot); a slot is a trainer's, so it is never its own source."""
    order = sorted(sources, key=lambda key: (-key[0], key[1]))
    found: dict[int, tuple[int, int]] = {}
    for i in sorted(now):
        for key in order:
            if key[1] != i and is_replay(now[i], sources[key]):
                found[i] = key
                break
    return found
