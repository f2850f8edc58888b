"""One entry point for a round: outlier rule, proven scores and the new global model (PROTOCOL §3)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch

from aggregator.rules.clip import contribution_scores
from aggregator.rules.fltrust import CosineResult
from aggregator.rules.novelty import novel_inner
from aggregator.rules.registry import outlier_rule
from aggregator.rules.screen import ScreenedKrum
from market.errors import AggregationError
from market.ml.training import pick_device
from market.protocol.manifest import RuleConfig
from market.protocol.quant import QuantSpec


@dataclass(frozen=True)
class RoundOutcome:
    """Decisions (trainer-index order), PROTOCOL §5 flags (0 accepted, 1 slashed, 3 excluded), proven scores,
    the novel inner products a'_i they are made of (§3) and the new global model."""

    accepted: list[bool]
    outlier: list[bool]
    flags: list[int]
    scores: list[int]
    inner: list[int]
    new_global: torch.Tensor
    detail: ScreenedKrum | CosineResult | None


def aggregate_round(
    U_view: torch.Tensor, U_full: torch.Tensor, v: torch.Tensor, g_prev: torch.Tensor,
    spec: QuantSpec, config: RuleConfig = RuleConfig(), seq: Sequence[int] | None = None,
    view: tuple[int, int] | None = None, step: torch.Tensor | None = None, joined: int | None = None,
    split: torch.Tensor | None = None,
) -> RoundOutcome:
    """Run the configured outlier rule (looked up in the registry) on the proof views, score the
    accepted, average the full updates.

    `seq` ranks the updates by submission (PROTOCOL §3 copies; default: row order). `view` = (offset,
    length) of the proof view in the flat model, averaged in fixed point as the circuit proves it (None:
    no proof view, a float average throughout, as for simulations). `step` is the previous proven step
    `M(r-1) - M(r-2)` over the proof view (aggregator/rules/novelty.py; None or zeros in round 1): the
    scores count only what it does not explain. `joined` is the project's joined trainers, on which Multi-Krum
    counts its `k` (§3; None: every joined trainer submitted a valid update). `split` is the round's split step h
(PROTOCOL §4; None: zero), the third vector of the public-span screen. Runs on CUDA
    when present (integer results identical to the CPU's); returns the model on the CPU.
    """
    n = U_view.shape[0]
    if U_full.shape[0] != n:
        raise AggregationError("U_view and U_full differ in number of updates")
    seq = list(range(n)) if seq is None else list(seq)
    same = U_view is U_full  # then the rule's pass over U_view also summed U_full's rows
    dev = pick_device()
    U_view, U_full, v, g_prev = U_view.to(dev), U_full.to(dev), v.to(dev), g_prev.to(dev)
    rule = outlier_rule(config.rule)
    decision = rule.decide(U_view, v, seq, config, joined, None if step is None else step.to(dev),
                           None if split is None else split.to(dev))
    if not same:
        decision = replace(decision, row_sum=None)
    inner = decision.inner if step is None else novel_inner(decision.inner, U_view, v, step.to(dev), decision.step_inner)
    scores = contribution_scores(inner, decision.accepted)
    new_global = rule.new_global(g_prev, U_full, decision, spec, view)
    accepted = decision.accepted
    return RoundOutcome(
        accepted, [not x for x in accepted], decision.flags, scores, inner, new_global.cpu(), decision.detail
    )
