"""The outlier rules, one class each, keyed by their manifest name and by the on-chain `Rule` (PROTOCOL §3).

As Flower's strategies delegate to pure aggregate functions, each class only wires the pure
functions of this package together: `decide` picks the accepted updates and the inner products
a_i the scores are made of, `new_global` averages. `aggregate_round` (round.py) looks the rule up
here; the owner and the circuit builder ask `project_rule` which rules a project can run on chain.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

import torch

from aggregator.rules.average import average
from aggregator.rules.distances import gram_pass
from aggregator.rules.fltrust import CosineResult, clip_weights, clipped_average, cosine_filter
from aggregator.rules.screen import ScreenedKrum, public_span, residuals, screened_multi_krum
from aggregator.rules.shapley import inner_products
from market.chain.marketplace import Rule
from market.errors import ConfigError
from market.protocol.manifest import RuleConfig, RuleName
from market.protocol.quant import QuantSpec

D = TypeVar("D")


@dataclass(frozen=True)
class Decision(Generic[D]):
    """A rule's verdict on one round's valid updates (their order): accepted flags, inner products
    a_i = <v, u_i> for the scores, and the rule's own detail (screens, cosines) for reports.

    `row_sum` is the exact sum of every row of the updates the rule decided on, when its pass computed it:
    `aggregate_round` lets the average reuse it when those updates are the full ones. `step_inner` is
    `<s, u_i>` for the previous step s, when the rule computed it (the novelty reuses it)."""

    accepted: list[bool]
    inner: list[int]
    detail: D
    row_sum: torch.Tensor | None = None
    step_inner: list[int] | None = None

    @property
    def flags(self) -> list[int]:
        """PROTOCOL §5 flags: the rule's own when it has them (1 slashed, 3 excluded), else 1 for every outlier."""
        own = getattr(self.detail, "flags", None)
        return list(own) if own is not None else [0 if ok else 1 for ok in self.accepted]


class OutlierRule(ABC, Generic[D]):
    """One outlier rule: its manifest name, its FedMarket `Rule` value (None: a project cannot
    declare it on chain) and whether zk/circuits/round.circom proves it."""

    name: ClassVar[RuleName]
    onchain: ClassVar[Rule | None]
    provable: ClassVar[bool]

    @abstractmethod
    def decide(self, U_view: torch.Tensor, v: torch.Tensor, seq: Sequence[int], config: RuleConfig,
               joined: int | None = None, step: torch.Tensor | None = None,
               split: torch.Tensor | None = None) -> Decision[D]:
        """Accept or flag each row of the proof views `U_view` (int64 [n, d]); `seq` ranks them by submission;
        `joined` is the project's joined trainers (default: the rows); `step` the previous proven step over the view
        (None: zero, as in round 1); `split` the round's split step h (PROTOCOL §4; None: zero)."""

    def new_global(self, g_prev: torch.Tensor, U_full: torch.Tensor, decision: Decision[D], spec: QuantSpec,
                   view: tuple[int, int] | None = None) -> torch.Tensor:
        """The new global model: PROTOCOL §3's average of the accepted full updates (fixed point over `view`)."""
        return average(g_prev, U_full, decision.accepted, spec, view, decision.row_sum)


class MultiKrum(OutlierRule[ScreenedKrum]):
    """PROTOCOL §3: the copy, norm-floor and public-span screens, the direction test, then Multi-Krum with a
    tolerance; proven by the round circuit."""

    name = RuleName.MULTI_KRUM
    onchain = Rule.MULTI_KRUM
    provable = True

    def decide(self, U_view: torch.Tensor, v: torch.Tensor, seq: Sequence[int], config: RuleConfig,
               joined: int | None = None, step: torch.Tensor | None = None,
               split: torch.Tensor | None = None) -> Decision[ScreenedKrum]:
        """Screens, direction test and Multi-Krum on exact squared distances; a_i and the row sum from the same pass."""
        h = None if split is None else split.to(v.device)
        gp, c = gram_pass(U_view, v, h), config
        a, nsq = gp.inner(), gp.sq_norms()
        cross, gram = public_span(U_view, v, a, step, h, None if h is None else gp.inner(1))
        residual = residuals(nsq, cross, gram)
        detail = screened_multi_krum(gp.distances(), nsq, a, seq, c.f, c.m, c.tau_pct, c.dup_pct, c.floor_pct,
                                      joined, residual)
        return Decision(detail.accepted, a, detail, gp.col_sums, [c[1] for c in cross])


class FLTrustCosine(OutlierRule[CosineResult]):
    """FLTrust-style: accept cosines with v above a threshold, average clipped to the median norm (not proven)."""

    name = RuleName.FLTRUST
    onchain = Rule.FLTRUST_COSINE
    provable = False

    def decide(self, U_view: torch.Tensor, v: torch.Tensor, seq: Sequence[int], config: RuleConfig,
               joined: int | None = None, step: torch.Tensor | None = None,
               split: torch.Tensor | None = None) -> Decision[CosineResult]:
        """The exact cosine test of `cosine_filter`."""
        detail = cosine_filter(U_view, v, config.cos_threshold_pct)
        return Decision(detail.accepted, detail.inner, detail)

    def new_global(
        self, g_prev: torch.Tensor, U_full: torch.Tensor, decision: Decision[CosineResult], spec: QuantSpec,
        view: tuple[int, int] | None = None,
    ) -> torch.Tensor:
        """The accepted updates clipped to their median norm, then averaged (float64; no circuit proves it,
        so the view is averaged like the rest)."""
        return clipped_average(g_prev, U_full, clip_weights(decision.detail.sq_norms, decision.accepted), spec)


class NoRule(OutlierRule[None]):
    """No outlier rule (FedAvg): every valid update is accepted; for the evaluation's baseline only."""

    name = RuleName.NONE
    onchain = None
    provable = False

    def decide(self, U_view: torch.Tensor, v: torch.Tensor, seq: Sequence[int], config: RuleConfig,
               joined: int | None = None, step: torch.Tensor | None = None,
               split: torch.Tensor | None = None) -> Decision[None]:
        """Accept all."""
        return Decision([True] * U_view.shape[0], inner_products(U_view, v), None)


#: The registry: one instance per manifest rule name.
OUTLIER_RULES: dict[RuleName, OutlierRule[Any]] = {r.name: r for r in (MultiKrum(), FLTrustCosine(), NoRule())}
#: The same rules by their FedMarket `Rule` value.
BY_ONCHAIN: dict[Rule, OutlierRule[Any]] = {r.onchain: r for r in OUTLIER_RULES.values() if r.onchain is not None}

if set(OUTLIER_RULES) != set(RuleName) or set(BY_ONCHAIN) != set(Rule):  # pragma: no cover - a rule added to one side only
    raise ImportError("aggregator.rules.registry: the registry, RuleName and the on-chain Rule disagree")


def outlier_rule(name: str) -> OutlierRule[Any]:
    """The registered rule of a manifest name; ConfigError names the rules there are."""
    try:
        return OUTLIER_RULES[RuleName(name)]
    except ValueError:
        raise ConfigError(f"unknown rule {name!r}; choose one of {[str(r) for r in RuleName]}") from None


def project_rule(name: str) -> Rule:
    """The FedMarket `Rule` of a rule a project can run: one the round circuit proves. ConfigError otherwise."""
    rule = outlier_rule(name)
    if not rule.provable or rule.onchain is None:
        provable = [str(r.name) for r in OUTLIER_RULES.values() if r.provable]
        raise ConfigError(f"rule {name!r} has no round circuit; a project's rule must be one of {provable}")
    return rule.onchain
