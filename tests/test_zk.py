"""Round proofs off chain: completeness, and soundness against tampered data, proofs and witnesses."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import groth16py
import pytest
import torch

from aggregator.rules.clip import contribution_scores
from aggregator.rules.novelty import novel_inner
from aggregator.rules.screen import PUBLIC_PCT, RESIDUAL_BITS, residual_terms
from aggregator.rules.shapley import first_order_shapley, harmonic_parts, inner_products
from market.errors import ProofError, TooManySlots
from market.protocol.commitment import commit, commit_directions
from market.protocol.public_input import FIELD_MODULUS as R
from market.protocol.quant import model_spec
from tests.fixtures_zk import (
    CTX,
    MODEL_IN,
    MODEL_PREV,
    PARAMS,
    SPEC,
    TAMPERED,
    RoundCase,
    direction,
    make_round,
    public_data,
    round_slots,
    tampered,
    updates,
    with_split,
)
from zk.build import INSECURE_MARK, CircuitParams, compile_circuit, constraint_count, is_insecure
from zk.prover import Proof, compute_witness
from zk.verifier import VerifyingKey, verify
from zk.witness import RoundWitness, Slot, build_witness


def _vk(out: Path) -> VerifyingKey:
    return VerifyingKey.load(out / "verification_key.json")


def test_development_setup_is_marked_insecure(zk_artifacts: Path) -> None:
    assert is_insecure(zk_artifacts)
    assert INSECURE_MARK in (zk_artifacts / "SETUP.json").read_text()
    assert constraint_count(zk_artifacts) < 200_000


def test_honest_round_outcome_is_the_aggregators(honest_round: RoundCase) -> None:
    w = honest_round.witness
    assert w.flags == [0, 0, 0, 3]  # the poisoned update is a Multi-Krum outlier: excluded, not slashed
    assert w.seqs == [0, 1, 2, 3] and w.inputs["seq"] == w.seqs
    ups = [s.update for s in honest_round.slots]
    U = torch.stack(ups)
    a = novel_inner(inner_products(U, honest_round.v), U, honest_round.v, MODEL_IN - MODEL_PREV)
    assert a != inner_products(U, honest_round.v)  # the previous step is not zero: the novelty counts
    accepted = [True, True, True, False]
    med = sorted((a[i], i) for i in range(3))[1][0]  # rank 3 // 2 among the accepted
    assert w.scores == first_order_shapley([min(x, med) for x in a[:3]] + [a[3]], accepted)
    assert w.scores == contribution_scores(a, accepted)
    assert w.public_input == public_data(honest_round)


def test_valid_proof_verifies_in_python_and_groth16py(zk_artifacts: Path, honest_round: RoundCase) -> None:
    pub = honest_round.witness.public_input
    assert verify(_vk(zk_artifacts), honest_round.proof, [pub])
    gv = groth16py.Verifier(groth16py.VerifyingKey.from_snarkjs_file(str(zk_artifacts / "verification_key.json")))
    assert gv.verify(honest_round.proof.to_bytes(), [pub])


@pytest.mark.parametrize("what", TAMPERED)
def test_changed_public_data_is_rejected(zk_artifacts: Path, honest_round: RoundCase, what: str) -> None:
    pub = public_data(honest_round, **tampered(honest_round)[what])
    assert pub != honest_round.witness.public_input
    assert not verify(_vk(zk_artifacts), honest_round.proof, [pub])


def test_tampered_proof_is_rejected(zk_artifacts: Path, honest_round: RoundCase) -> None:
    vk, pub, w = _vk(zk_artifacts), honest_round.witness.public_input, list(honest_round.proof.words)
    for i in (0, 2, 6):
        bad = list(w)
        bad[i] = (bad[i] + 1) % (2**256)
        assert not verify(vk, Proof(tuple(bad)), [pub])
    swapped = w[:2] + [w[3], w[2], w[5], w[4]] + w[6:]  # G2 in snarkjs order instead of EVM order
    assert not verify(vk, Proof(tuple(swapped)), [pub])
    assert not verify(vk, honest_round.proof, [pub + R])  # not a field element


def test_swapped_outlier_admits_no_witness(zk_artifacts: Path, honest_round: RoundCase, tmp_path: Path) -> None:
    """Flag the honest slot 0 instead of the poisoned slot 3: no consistent witness exists."""
    inputs = dict(honest_round.witness.inputs)
    inputs["flag"] = [3, 0, 0, 0]
    with pytest.raises(ProofError):
        compute_witness(zk_artifacts, inputs, tmp_path / "a.wtns")
    inputs["sel"] = [0, 1, 1, 1]  # also move the selection: the Krum ranking check fails
    inputs["ref"] = [0, 0, 0, 1]
    with pytest.raises(ProofError):
        compute_witness(zk_artifacts, inputs, tmp_path / "b.wtns")


def test_inconsistent_witness_is_refused(zk_artifacts: Path, honest_round: RoundCase, tmp_path: Path) -> None:
    inputs = dict(honest_round.witness.inputs)
    u = [list(row) for row in inputs["u"]]  # type: ignore[union-attr]
    u[0][0] += 1  # no longer the committed update
    with pytest.raises(ProofError):
        compute_witness(zk_artifacts, {**inputs, "u": u}, tmp_path / "u.wtns")
    scores = list(inputs["score"])  # type: ignore[call-overload]
    scores[1] = (scores[1] + 1) % R
    with pytest.raises(ProofError):
        compute_witness(zk_artifacts, {**inputs, "score": scores}, tmp_path / "s.wtns")
    bad_slots = list(honest_round.slots)
    bad_slots[0] = dataclasses.replace(bad_slots[0], update=bad_slots[1].update)
    with pytest.raises(ProofError):
        build_witness(PARAMS, CTX, honest_round.v, honest_round.h, honest_round.v_commit, bad_slots, MODEL_IN, MODEL_PREV)


def test_zero_or_unnormalised_direction_admits_no_witness(zk_artifacts: Path, honest_round: RoundCase,
                                                           tmp_path: Path) -> None:
    """PROTOCOL §4: v = 0 (which would pay nobody by merit) and a v whose largest magnitude is below qmax fail,
    even with vCommit their honest commitment; the aggregator's side refuses them before proving."""
    inputs = dict(honest_round.witness.inputs)
    zero = torch.zeros(PARAMS.d, dtype=torch.int64)
    small = honest_round.v.clamp(-SPEC.qmax + 1, SPEC.qmax - 1)
    for name, v in (("zero", zero), ("small", small)):
        offsets = [int(x) + SPEC.offset for x in v.tolist()]
        with pytest.raises(ProofError):
            compute_witness(zk_artifacts, {**inputs, "v": offsets, "vCommit": with_split(v)[2]}, tmp_path / f"{name}.wtns")
        with pytest.raises(ProofError, match="not normalised"):
            build_witness(PARAMS, CTX, *with_split(v), honest_round.slots, MODEL_IN, MODEL_PREV)


def test_scores_must_be_capped_at_the_median(zk_artifacts: Path, honest_round: RoundCase, tmp_path: Path) -> None:
    """PROTOCOL §3's median cap is proven: the uncapped scores (with their own exact remainders) and another median
    slot admit no witness."""
    w = honest_round.witness
    inputs = dict(w.inputs)
    a = inner_products(torch.stack([s.update for s in honest_round.slots]), honest_round.v)
    accepted = [True, True, True, False]
    plain = first_order_shapley(a, accepted)
    assert plain != w.scores  # the top update's a was capped
    n, q, p = 3, 6, 5  # lcm(1..3), 6/2 + 6/3
    s_sum = sum(a[:3])
    rem = [(n - 1) * q * a[i] + (n * a[i] - s_sum) * p - plain[i] * n * (n - 1) * q for i in range(3)] + [0]
    with pytest.raises(ProofError):
        compute_witness(zk_artifacts, {**inputs, "score": [x % R for x in plain], "rem": rem}, tmp_path / "plain.wtns")
    amed = list(inputs["amed"])  # type: ignore[call-overload]
    other = [0] * 4
    other[(amed.index(1) + 1) % 3] = 1
    with pytest.raises(ProofError):
        compute_witness(zk_artifacts, {**inputs, "amed": other}, tmp_path / "med.wtns")


def test_new_model_must_be_the_average(zk_artifacts: Path, honest_round: RoundCase, tmp_path: Path) -> None:
    """PROTOCOL §3: g(r)'s view is M(r-1) + floor(sum_A U / |A|). Another g(r) (one value off, with its own honest
    commitment and remainder) or another g(r-1) than the committed one admits no witness."""
    w = honest_round.witness
    accepted = [i for i, f in enumerate(w.flags) if f == 0 and w.commitments[i]]
    total = sum((honest_round.slots[i].update for i in accepted), torch.zeros(PARAMS.d, dtype=torch.int64))
    assert torch.equal(w.model_out, MODEL_IN + torch.div(total, len(accepted), rounding_mode="floor"))
    inputs = dict(w.inputs)
    mspec = model_spec(SPEC)
    off = w.model_out.clone()
    off[0] += 1
    rem = list(inputs["mRem"])  # type: ignore[call-overload]
    rem[0] -= len(accepted)  # keeps step * n + rem = sum: only the range of rem can refuse it
    forged = {**inputs, "mOut": [int(x) + mspec.offset for x in off.tolist()], "modelOut": commit(off, mspec),
              "mRem": rem}
    with pytest.raises(ProofError):
        compute_witness(zk_artifacts, forged, tmp_path / "out.wtns")
    other_in = MODEL_IN + 1
    with pytest.raises(ProofError):  # the chain's g(r-1) commitment is not this model's
        compute_witness(zk_artifacts, {**inputs, "mIn": [int(x) + mspec.offset for x in other_in.tolist()]},
                        tmp_path / "in.wtns")


def test_invalid_and_absent_slots(zk_artifacts: Path) -> None:
    """Slot 1 sent an invalid blob (flag 2), slot 2 sent nothing: both unscored."""
    case = make_round(zk_artifacts, [*updates(5)[:1], None, None, updates(5)[3]], seed=5, absent=(2,))
    w = case.witness
    assert w.flags == [0, 2, 0, 3] and w.commitments[2] == 0
    assert w.scores[1:] == [0, 0, 0]
    assert w.seqs == [0, 1, 0, 2]  # the invalid blob has a rank too; the absent slot has 0
    assert verify(_vk(zk_artifacts), case.proof, [w.public_input])


@pytest.mark.parametrize("seqs", [[0, 1, 3, 2], [256, 1, 0, 2], [0, 1, 0, R - 1]])
def test_seq_is_a_byte_and_zero_for_absent_slots(zk_artifacts: Path, tmp_path: Path, seqs: list[int]) -> None:
    """The circuit refuses a rank on an absent slot and ranks outside uint8 (the hash takes 8 bits)."""
    case_slots = round_slots([*updates(5)[:1], None, None, updates(5)[3]], seed=5, absent=(2,))
    w = build_witness(PARAMS, CTX, *with_split(direction(5)), case_slots, MODEL_IN, MODEL_PREV)
    compute_witness(zk_artifacts, w.inputs, tmp_path / "ok.wtns")
    with pytest.raises(ProofError):
        compute_witness(zk_artifacts, {**w.inputs, "seq": seqs}, tmp_path / "bad.wtns")


def test_key_without_phase2_contribution_is_refused(zk_artifacts: Path, tmp_path: Path) -> None:
    vk = json.loads((zk_artifacts / "verification_key.json").read_text())
    vk["vk_delta_2"] = vk["vk_gamma_2"]
    with pytest.raises(ProofError, match="delta == gamma"):
        VerifyingKey.from_json(vk)
    forged = tmp_path / "forged"
    shutil.copytree(zk_artifacts, forged, ignore=shutil.ignore_patterns("*.pk", "main_js", "*.r1cs"))
    (forged / "verification_key.json").write_text(json.dumps(vk))
    from zk.onchain import deploy_verifier

    with pytest.raises(ProofError, match="delta == gamma"):
        deploy_verifier(None, forged, allow_insecure=True)  # type: ignore[arg-type]


def test_groth16py_proof_verifies_with_snarkjs(zk_artifacts: Path, honest_round: RoundCase, tmp_path: Path) -> None:
    from zk.build import run_node

    (tmp_path / "proof.json").write_text(json.dumps(honest_round.proof.to_snarkjs()))
    (tmp_path / "public.json").write_text(json.dumps([str(honest_round.witness.public_input)]))
    out = run_node(["snarkjs", "groth16", "verify", str(zk_artifacts / "verification_key.json"),
                    str(tmp_path / "public.json"), str(tmp_path / "proof.json")])
    assert "OK" in out


TAU_PARAMS = CircuitParams(n=4, d=16, f=1, m=2, tau_pct=150)


@pytest.fixture(scope="module")
def tau_circuit() -> Path:
    """m = 2, tau_pct = 150: compiled only (a witness checks every constraint; no keys needed)."""
    return compile_circuit(TAU_PARAMS)


@pytest.mark.parametrize(("seed", "flags"), [(0, [0, 0, 0, 3]), (1, [3, 0, 0, 3])])
def test_tolerance_rule_and_ties(tau_circuit: Path, tmp_path: Path, seed: int, flags: list[int]) -> None:
    """Seed 0: krum tie between slots 0 and 1 (index wins), slot 2 unselected but within tau;
    seed 1: slot 0 unselected and beyond tau. Any other flags admit no witness."""
    ups, v = updates(seed), direction(seed)
    slots = [Slot(commit(u, SPEC), u, i) for i, u in enumerate(ups)]
    w = build_witness(TAU_PARAMS, CTX, *with_split(v), slots, MODEL_IN, MODEL_PREV)
    assert w.flags == flags
    compute_witness(tau_circuit, w.inputs, tmp_path / "ok.wtns")
    for i in range(3):
        bad = list(w.inputs["flag"])  # type: ignore[call-overload]
        bad[i] = 3 - bad[i]
        with pytest.raises(ProofError):
            compute_witness(tau_circuit, {**w.inputs, "flag": bad}, tmp_path / f"bad{i}.wtns")


# ---- free-rider screens (PROTOCOL §3): copies and the norm floor, on the PARAMS circuit ----

def _copied_round() -> list[torch.Tensor]:
    """Slot 2 sends slot 0's update plus tiny noise; slot 3 is poisoned."""
    ups = updates(0)
    g = torch.Generator().manual_seed(77)
    ups[2] = ups[0] + torch.randint(-2, 3, (PARAMS.d,), generator=g)
    return ups


def _witness(params: CircuitParams, ups: list[torch.Tensor], order: list[int] | None = None,
             seed: int = 0) -> RoundWitness:
    v = direction(seed)
    return build_witness(params, CTX, *with_split(v), round_slots(list(ups), seed, order=order), MODEL_IN, MODEL_PREV)


@pytest.mark.parametrize(("order", "flags"), [([0, 1, 2, 3], [0, 0, 3, 3]), ([2, 1, 0, 3], [3, 0, 0, 3])])
def test_copy_is_flagged_and_the_earlier_update_kept(zk_artifacts: Path, tmp_path: Path, order: list[int],
                                                     flags: list[int]) -> None:
    """Of two near-identical updates the later submission is the copy, excluded (flag 3, not slashed: PROTOCOL §3):
    swapping the ranks swaps the flag. The copy is scored 0 and the rest of the round is decided without it."""
    ups = _copied_round()
    w = _witness(PARAMS, ups, order)
    assert w.flags == flags
    copy = flags.index(3)
    assert w.scores[copy] == 0 and w.inputs["sel"][copy] == 0  # type: ignore[index]
    assert not any(w.inputs["nb"][i][copy] for i in range(PARAMS.n))  # type: ignore[index]
    compute_witness(zk_artifacts, w.inputs, tmp_path / "ok.wtns")
    for i in range(PARAMS.n):
        bad = list(flags)
        bad[i] = 1 - bad[i]
        with pytest.raises(ProofError):
            compute_witness(zk_artifacts, {**w.inputs, "flag": bad}, tmp_path / f"flag{i}.wtns")


def test_hidden_or_misplaced_copy_admits_no_witness(zk_artifacts: Path, tau_circuit: Path, tmp_path: Path) -> None:
    """Complete, self-consistent witnesses of the wrong outcome fail the copy constraints:
    the round decided without the copy rule (copy accepted, Krum hints over all four), and the round
    decided for the other submission order (the earlier update flagged) under the hashed ranks."""
    ups = _copied_round()
    honest = _witness(PARAMS, ups)
    no_rule = _witness(dataclasses.replace(PARAMS, dup_pct=0), ups)
    assert no_rule.flags == [0, 0, 0, 3] and honest.flags == [0, 0, 3, 3]
    with pytest.raises(ProofError):
        compute_witness(zk_artifacts, no_rule.inputs, tmp_path / "hide.wtns")
    swapped = _witness(PARAMS, ups, order=[2, 1, 0, 3])
    assert swapped.flags == [3, 0, 0, 3]
    with pytest.raises(ProofError):
        compute_witness(zk_artifacts, {**swapped.inputs, "seq": honest.seqs}, tmp_path / "earlier.wtns")
    # with DUP = 0 (the tolerance circuit has no copy constraints) the copy is an ordinary update
    plain = _witness(TAU_PARAMS, ups)
    assert plain.flags[2] == 0
    compute_witness(tau_circuit, plain.inputs, tmp_path / "plain.wtns")


def test_zero_update_is_below_the_floor(zk_artifacts: Path, tmp_path: Path) -> None:
    """A trainer that sends nothing (a zero update) is low: below floor_pct% of the lower median's
    squared norm, flagged before Multi-Krum (which runs without it). Witnesses that hide it fail:
    flag 0 alone, the round decided without the floor, and that round with the zero update named
    as the median (so that nothing is below the floor)."""
    ups = updates(0)
    ups[1] = torch.zeros(PARAMS.d, dtype=torch.int64)
    w = _witness(PARAMS, ups)
    assert w.flags == [0, 1, 0, 3] and w.scores[1] == 0
    assert w.inputs["med"] == [0, 0, 1, 0]  # nsq order: zero, 2, 0, poisoned 3; rank (4 - 1) // 2 = 1
    assert w.inputs["sel"] == [1, 0, 1, 0]  # Multi-Krum over {0, 2, 3}: m_eff = 2
    compute_witness(zk_artifacts, w.inputs, tmp_path / "ok.wtns")
    with pytest.raises(ProofError):
        compute_witness(zk_artifacts, {**w.inputs, "flag": [0, 0, 0, 3]}, tmp_path / "flag.wtns")
    with pytest.raises(ProofError):  # the zero update excluded instead of slashed
        compute_witness(zk_artifacts, {**w.inputs, "flag": [0, 3, 0, 3]}, tmp_path / "flag3.wtns")
    no_floor = _witness(dataclasses.replace(PARAMS, floor_pct=0), ups)
    assert no_floor.flags == [0, 3, 0, 3]  # without the floor it is still no help: a = 0 fails the direction test
    for i, med in enumerate(([0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0])):
        with pytest.raises(ProofError):
            compute_witness(zk_artifacts, {**no_floor.inputs, "med": med}, tmp_path / f"hide{i}.wtns")
    with pytest.raises(ProofError):  # another median for the honest outcome
        compute_witness(zk_artifacts, {**w.inputs, "med": [1, 0, 0, 0]}, tmp_path / "med.wtns")


def test_slots_are_capped_where_scores_stay_unique() -> None:
    """2^64 D(n) < p holds up to n = 126 accepted updates: beyond it a second (score, remainder) pair verifies."""
    q, _ = harmonic_parts(126)
    assert 2**64 * 126 * 125 * q < R
    q, _ = harmonic_parts(127)
    assert 2**64 * 127 * 126 * q > R
    assert CircuitParams(n=126, d=1).n == 126
    with pytest.raises(TooManySlots, match="at most 126 slots"):
        CircuitParams(n=127, d=1)


# ---- the direction test, the two outcomes and the novelty (PROTOCOL §3, §5), on the PARAMS circuit ----

def test_update_against_v_is_excluded_never_slashed(zk_artifacts: Path, tmp_path: Path) -> None:
    """A sign-flipped update (a < 0) is excluded (flag 3) by the direction test before Multi-Krum. The attacker's
    test: an aggregator (with the owner) that would rather slash it, or slash an honest trainer that Multi-Krum
    pushed out, finds no witness for flag 1; nor can it pass the flipped update off as accepted."""
    ups = updates(0, poisoned=())
    ups[3] = -ups[3]
    w = _witness(PARAMS, ups)
    assert w.flags[3] == 3 and w.scores[3] == 0
    compute_witness(zk_artifacts, w.inputs, tmp_path / "ok.wtns")
    excluded = [i for i, f in enumerate(w.flags) if f == 3]
    for i in excluded:
        for forged in (1, 0):
            bad = list(w.flags)
            bad[i] = forged
            with pytest.raises(ProofError):
                compute_witness(zk_artifacts, {**w.inputs, "flag": bad}, tmp_path / f"f{i}{forged}.wtns")


def test_novelty_must_be_the_floor_division(zk_artifacts: Path, honest_round: RoundCase, tmp_path: Path) -> None:
    """nov_i = floor((ss a_i - vs su_i) / ss): one more or less (with the remainder moved to keep the product
    equation) admits no witness, and neither does another g(r-2) than the committed one."""
    inputs = dict(honest_round.witness.inputs)
    nov, nrem = list(inputs["nov"]), list(inputs["nrem"])  # type: ignore[call-overload]
    step = MODEL_IN - MODEL_PREV
    ss = int((step * step).sum())
    for delta in (1, -1):
        forged_nov, forged_rem = list(nov), list(nrem)
        forged_nov[0] = (forged_nov[0] + delta) % R
        forged_rem[0] -= delta * ss
        with pytest.raises(ProofError):
            compute_witness(zk_artifacts, {**inputs, "nov": forged_nov, "nrem": forged_rem}, tmp_path / f"n{delta}.wtns")
    mspec = model_spec(SPEC)
    with pytest.raises(ProofError):
        compute_witness(zk_artifacts, {**inputs, "mPrev": [int(x) + mspec.offset for x in (MODEL_PREV + 1).tolist()]},
                        tmp_path / "prev.wtns")


def _step_rider_round(seed: int) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
    """(updates, v, old): the previous proven step ran along `old`; three honest updates move along `new` = `old` plus
    what their data adds, and v along `new`; the fourth resends `old` at the first one's size."""
    g = torch.Generator().manual_seed(seed)
    old = torch.randint(-400, 400, (PARAMS.d,), generator=g)
    new = old + torch.randint(-300, 300, (PARAMS.d,), generator=g)
    ups = [new + torch.randint(-150, 150, (PARAMS.d,), generator=g) for _ in range(3)]
    size = float(ups[0].to(torch.float64).norm())
    ups.append(torch.round(old.to(torch.float64) * size / float(old.to(torch.float64).norm())).to(torch.int64))
    return ups, torch.round(new.to(torch.float64) * SPEC.qmax / new.abs().max()).to(torch.int64), old


def test_a_resent_previous_step_scores_least(zk_artifacts: Path, tmp_path: Path) -> None:
    """The previous proven step ran along `old`; this round's honest updates move along `new` = `old` plus what
    the trainers' data adds. A free rider that resends the previous step at an honest size is never slashed,
    and scores below every trainer that trained (its novelty is zero), whether or not Multi-Krum keeps it."""
    for seed in range(3):
        ups, v, old = _step_rider_round(seed)
        w = build_witness(PARAMS, CTX, *with_split(v), round_slots(list(ups), seed), MODEL_IN, MODEL_IN - old)
        nov = [x if x < R // 2 else x - R for x in w.inputs["nov"]]  # type: ignore[attr-defined]
        assert w.flags[3] != 1 and 20 * abs(nov[3]) < min(nov[:3])  # the rounding's crumbs, against real work
        assert w.scores[3] < min(s for s, f in zip(w.scores[:3], w.flags) if f == 0)
    compute_witness(zk_artifacts, w.inputs, tmp_path / "ok.wtns")


def test_an_update_within_the_public_span_is_excluded_never_slashed(zk_artifacts: Path, tmp_path: Path) -> None:
    """The attacker's test for free riders that send what anyone can compute: the previous proven step resent at an
    honest size lies wholly within the span of v and that step, so the public-span screen (PROTOCOL §3) excludes it
    (flag 3, unpaid, never slashed) before Multi-Krum. An aggregator that would accept it (flag 0), slash it (flag 1),
    claim another residual for it, or name another median finds no witness."""
    ups, v, old = _step_rider_round(5)
    w = build_witness(PARAMS, CTX, *with_split(v), round_slots(list(ups), 5), MODEL_IN, MODEL_IN - old)
    res, med = list(w.inputs["res"]), list(w.inputs["pmed"])  # type: ignore[call-overload]
    ref = res[med.index(1)]  # the lower median residual, an honest update's
    assert 100 * res[3] < PUBLIC_PCT * ref <= min(100 * x for x in res[:3])
    assert w.flags[3] == 3 and w.scores[3] == 0 and w.inputs["sel"][3] == 0  # type: ignore[index]
    assert not any(w.inputs["nb"][i][3] for i in range(PARAMS.n))  # type: ignore[index]  # not in Multi-Krum's set
    compute_witness(zk_artifacts, w.inputs, tmp_path / "ok.wtns")
    for forged in (0, 1):
        with pytest.raises(ProofError):
            compute_witness(zk_artifacts, {**w.inputs, "flag": w.flags[:3] + [forged]}, tmp_path / f"flag{forged}.wtns")
    rres = list(w.inputs["rres"])  # type: ignore[call-overload]
    vecs = [v, old, with_split(v)[1]]
    q3 = residual_terms([int((ups[3] * ups[3]).sum())], [[int((b * ups[3]).sum()) for b in vecs]],
                        [[int((b * c).sum()) for c in vecs] for b in vecs])[0][1]
    with pytest.raises(ProofError):  # a larger residual, its remainder moved to keep the product equation
        compute_witness(zk_artifacts, {**w.inputs, "res": res[:3] + [res[3] + 1], "rres": rres[:3] + [rres[3] - q3]},
                        tmp_path / "res.wtns")
    for other in ([1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0]):
        if other != med:
            with pytest.raises(ProofError):
                compute_witness(zk_artifacts, {**w.inputs, "pmed": other}, tmp_path / f"med{other.index(1) if 1 in other else 9}.wtns")


def test_training_on_the_published_split_is_excluded_never_slashed(zk_artifacts: Path, tmp_path: Path) -> None:
    """The attacker's test for the split rider (PROTOCOL §3, §4): a trainer that trains on the owner's published
    validation split, not on data of its own, sends what the round's split step h already says. Its update, h at an
    honest size plus a little noise, is excluded (flag 3, unpaid, never slashed) by the public-span screen, which
    spans v, the previous step and h; with no split step in the span (h = 0, the rule before it) the same update is
    accepted and paid. An aggregator that would accept or slash it finds no witness."""
    g = torch.Generator().manual_seed(10)

    def normalised(x: torch.Tensor) -> torch.Tensor:
        return torch.round(x.to(torch.float64) * SPEC.qmax / x.abs().max()).to(torch.int64)

    base = torch.randint(-400, 400, (PARAMS.d,), generator=g)  # what the owner's data asks for
    ups = [base + torch.randint(-250, 250, (PARAMS.d,), generator=g) for _ in range(3)]  # the trainers' own data
    v = normalised(base + torch.randint(-300, 300, (PARAMS.d,), generator=g))
    h = normalised(base + torch.randint(-300, 300, (PARAMS.d,), generator=g))
    vc = commit_directions(v, h, SPEC)
    size = float(ups[0].to(torch.float64).norm()) / float(h.to(torch.float64).norm())
    ups.append(torch.round(h.to(torch.float64) * size).to(torch.int64) + torch.randint(-3, 4, (PARAMS.d,), generator=g))
    seed = 10
    w = build_witness(PARAMS, CTX, v, h, vc, round_slots(ups, seed), MODEL_IN, MODEL_PREV)
    assert w.flags[3] == 3 and w.scores[3] == 0 and 100 * w.inputs["res"][3] < min(w.inputs["res"][:3])  # type: ignore[index]
    zero = torch.zeros_like(h)
    before = build_witness(PARAMS, CTX, v, zero, commit_directions(v, zero, SPEC), round_slots(ups, seed),
                           MODEL_IN, MODEL_PREV)
    assert before.flags[3] == 0 and before.scores[3] == max(before.scores)
    compute_witness(zk_artifacts, w.inputs, tmp_path / "ok.wtns")
    for forged in (0, 1):
        with pytest.raises(ProofError):
            compute_witness(zk_artifacts, {**w.inputs, "flag": w.flags[:3] + [forged]}, tmp_path / f"flag{forged}.wtns")
    with pytest.raises(ProofError):  # the round's h replaced by zeros under the same commitment
        compute_witness(zk_artifacts, {**w.inputs, "h": [SPEC.offset] * PARAMS.d}, tmp_path / "h.wtns")


def test_the_circuit_proves_the_rules_public_span_constants() -> None:
    """round.circom hard-codes the public-span screen's threshold and fixed-point bits: they are aggregator/rules/screen.py's."""
    src = (Path(__file__).resolve().parents[1] / "zk" / "circuits" / "round.circom").read_text()
    assert f"var PUB = {PUBLIC_PCT};" in src and f"var RK = {RESIDUAL_BITS};" in src
