"""The v-sybil measurement (issue 12): §7's share, the tight tilt search on a real round, the median cap's bound
under the protocol's scores against the uncapped §3 baseline."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest
import torch

from aggregator.eval.evaluate import EvalConfig, _setup, money_shares, round_updates, submission_order
from aggregator.eval.sybil import (
    PROTOCOL,
    UNCAPPED,
    Probe,
    SybilRound,
    TiltSearch,
    best_probe,
    cap_label,
    max_tilt,
    scorings,
    sybil_v_figures,
    tilted,
)
from aggregator.rules.clip import clip_inner, clipped_shapley, median_cap
from aggregator.rules.direction import validation_direction
from aggregator.rules.round import RoundOutcome
from aggregator.rules.shapley import first_order_shapley
from market.errors import AggregationError
from market.ml.tasks import flatten
from market.protocol.manifest import HyperParams
from market.protocol.quant import QuantSpec, quantize

CFG = EvalConfig(hp=HyperParams(1, 16, 1.0), sybil_rounds=2)


def bound(accepted: int) -> Fraction:
    """clip.py's bound on one trainer's share of a round with `accepted` accepted updates: 1 / ceil(accepted / 2)."""
    return Fraction(1, (accepted + 1) // 2)


def test_money_shares_follow_section_7() -> None:
    assert money_shares([10, -5, 30, 7], [True, True, True, False]) == [Fraction(1, 4), 0, Fraction(3, 4), 0]
    assert money_shares([0, -3, 5], [True, True, False]) == [Fraction(1, 2), Fraction(1, 2), 0]  # none positive: equal
    assert money_shares([4, 4], [False, False]) == [0, 0]


def test_tilt_is_rounded_half_even_and_clipped() -> None:
    spec = QuantSpec(bits=4, scale_log2=0)  # qmax = 7
    base = torch.tensor([9, 1, 2, -3, 6], dtype=torch.int64)  # 9: outside the view
    v = torch.tensor([7, 1, -7, 3], dtype=torch.int64)
    # t * v / qmax at t = 3: 3, 3/7, -3, 9/7 -> 3, 0, -3, 1; then clipped to +-7
    assert tilted(base, v, (1, 4), 3, spec).tolist() == [9, 4, 2, -6, 7]
    assert tilted(base, v, (1, 4), max_tilt(spec), spec).tolist() == [9, 7, 7, -7, 7]


def test_median_clip_by_hand() -> None:
    a, every = [10, 40, 20, 30, 100], [True] * 5
    assert median_cap(a, every) == 30  # rank 5 // 2 of 10, 20, 30, 40, 100
    assert clip_inner(a, every) == [10, 30, 20, 30, 30]
    assert clip_inner(a, every, 150) == [10, 40, 20, 30, 45]
    assert clip_inner([-10, -20, 5], [True, True, True], 150) == [-10, -20, -10]  # a negative median is its own cap
    assert clip_inner([7, 1, 50], [True, True, False]) == [7, 1, 50]  # cap 7 over {7, 1}; the rejected a is kept
    assert median_cap([1], [False]) is None
    assert clipped_shapley(a, every) == first_order_shapley([10, 30, 20, 30, 30], every)
    with pytest.raises(AggregationError):
        median_cap(a, every, 99)


def test_median_clip_caps_every_share_at_one_over_half() -> None:
    """clip.py's bound: at c = 100% nobody earns more than 1 / ceil(n / 2) of a round, whatever the a's."""
    rng = random.Random(12)
    for _ in range(2000):
        n = rng.randint(1, 12)
        a = [rng.choice([rng.randint(-10**9, 10**9), rng.randint(-5, 5), 10**15]) for _ in range(n)]
        accepted = [rng.random() < 0.85 for _ in range(n)]
        k = sum(accepted)
        if k:
            assert max(money_shares(clipped_shapley(a, accepted), accepted)) <= bound(k)


def test_shares_by_scoring_by_hand() -> None:
    """a = 10, 40, 20, 30, 100, all accepted, the sybil at slot 4. §3 with n = 5: Q = 60, P = 77, so a score is
    (625 a - 77 S) // 1200. Uncapped S = 200: -8, 8, -3, 2, 39, the sybil takes 39/49. Capped at the median 30,
    S = 120: -3, 7, 2, 7, 7, so 7/23. At 125% the cap is 37, S = 134: -4, 10, 1, 7, 10, so 10/28."""
    a, every = [10, 40, 20, 30, 100], [True] * 5
    capped = [-3, 7, 2, 7, 7]
    out = RoundOutcome(every, [False] * 5, [0] * 5, capped, a, torch.zeros(1), None)
    probe = Probe("own", 3, 4, out)
    assert probe.accepted and probe.share() == Fraction(7, 23)
    assert probe.share(first_order_shapley) == Fraction(39, 49)
    assert probe.share(scorings((125,))[cap_label(125)]) == Fraction(5, 14)
    assert list(scorings((125,))) == [PROTOCOL, UNCAPPED, cap_label(125)]

    # the same share from a smaller tilt loses the tie; a rejected probe never counts, however much it would pay
    low = Probe("own", 1, 4, RoundOutcome(every, [False] * 5, [0] * 5, capped, a, torch.zeros(1), None))
    rejected = RoundOutcome([True] * 4 + [False], [False] * 4 + [True], [0] * 4 + [3], [0, 9, 0, 0, 0], a, torch.zeros(1), None)
    search = TiltSearch("own", 3, (low, probe, Probe("own", 4, 4, rejected)))
    assert search.best() is probe and search.best(first_order_shapley) is probe
    untilted = Probe("own", 0, 4, rejected)
    assert TiltSearch("own", None, (untilted,)).best() is None
    assert best_probe([TiltSearch("own", None, (untilted,)), search]) is probe
    assert best_probe([TiltSearch("own", None, (untilted,))]) is untilted  # nothing accepted: the honest submission


@pytest.fixture(scope="module")
def round0() -> SybilRound:
    """Round 0 of the digits eval (10 trainers, Dirichlet 0.5), trainer 8 the sybil."""
    torch.set_num_threads(1)
    task, parts = _setup(CFG)
    g, view = flatten(task.model(CFG.seed)), task.view()
    Q = torch.stack([quantize(u, CFG.spec) for u in round_updates(task, g, parts, 0, CFG)])
    v = validation_direction(task.build_model, g, task.val, view, CFG.spec)
    return SybilRound(Q, 8, v, g, CFG.spec, view, submission_order(10, None, [], 0))


def test_search_is_tight_and_only_the_uncapped_baseline_pays_the_tilt(round0: SybilRound) -> None:
    searches = round0.attack()
    assert [s.base for s in searches] == ["own", "mean"] and searches[0].probes[0].t == 0
    uncapped_shares = []
    for search, base in zip(searches, round0.bases().values()):
        assert search.boundary is not None and 0 < search.boundary < max_tilt(CFG.spec)
        assert round0.probe(search.base, base, search.boundary).accepted  # the rule accepts the tilt found
        assert not round0.probe(search.base, base, search.boundary + 1).accepted  # and one more is rejected
        for p in search.probes:  # the protocol's scores are §3 of the a's capped at the accepted median
            assert p.outcome.scores == clipped_shapley(p.outcome.inner, p.outcome.accepted, 100)
        best = search.best()
        assert best is not None and best.accepted
        assert best.share() == money_shares(best.outcome.scores, best.outcome.accepted)[8]
        uncapped = search.best(first_order_shapley)
        assert uncapped is not None
        uncapped_shares.append(uncapped.share(first_order_shapley))
    # Uncapped, tilting pays (from the sybil's own update); the public-span screen (PROTOCOL §3) already stops the
    # tilt of the others' mean short of that, since a mean tilted far towards v is mostly what v explains.
    assert uncapped_shares[0] > 2 * Fraction(1, 10) and uncapped_shares[1] < uncapped_shares[0]
    best = best_probe(searches)
    accepted = sum(best.outcome.accepted)
    assert best.share() <= bound(accepted) and (accepted < 10 or best.share() <= Fraction(1, 5))


def test_sybil_v_figures_follow_the_rounds() -> None:
    task, parts = _setup(CFG)
    out = sybil_v_figures(task, parts, CFG)
    protocol, uncapped = out["sybil_v"][PROTOCOL], out["sybil_v"][UNCAPPED]
    assert out["sybil_v_share"] == protocol["share"] and out["sybil_v_share_uncapped"] == uncapped["share"]
    assert out["sybil_v_fair_share"] == 0.1 and protocol["sybil"] == uncapped["sybil"]
    assert out["sybil_v_shares_per_round"] == {PROTOCOL: protocol["shares_per_round"], UNCAPPED: uncapped["shares_per_round"]}
    for x in (protocol, uncapped):
        assert len(x["rounds"]) == 2 and x["share"] == sum(x["shares_per_round"]) / 2
        assert all(0 < r["share"] <= 1 and r["share"] >= r["honest_share"] for r in x["rounds"])
    assert protocol["rounds"][0]["boundary"] == uncapped["rounds"][0]["boundary"]  # round 0: same model, same search
    assert all(r["share"] <= bound(r["accepted"]) for r in protocol["rounds"])  # 1/5 with 10 accepted, 1/4 with 8
    assert out["sybil_v_share"] <= 2 * out["sybil_v_fair_share"] < out["sybil_v_share_uncapped"]  # issue 12's target
