"""One vocabulary per rule: the outlier-rule registry, the manifest's names, the on-chain enum and the eval's labels."""

from __future__ import annotations

import pytest
import torch

from aggregator.eval.evaluate import DEFAULT_RULE, default_rules, rule_label
from aggregator.rules.fltrust import cosine_filter
from aggregator.rules.registry import BY_ONCHAIN, OUTLIER_RULES, FLTrustCosine, MultiKrum, NoRule, outlier_rule, project_rule
from aggregator.rules.round import aggregate_round
from aggregator.rules.screen import residuals, screened_multi_krum
from aggregator.rules.shapley import distances_norms_inner
from market.chain.marketplace import Rule
from market.errors import ConfigError
from market.parties.trainer_node import TrainerNode
from market.protocol.manifest import RULES, HyperParams, Manifest, RuleConfig, RuleName
from market.protocol.quant import QuantSpec

SPEC = QuantSpec()


def test_registry_keys_are_the_manifest_names_and_the_onchain_enum() -> None:
    assert set(OUTLIER_RULES) == set(RuleName) == set(RULES) == {"multi_krum", "fltrust", "none"}
    assert {type(r) for r in OUTLIER_RULES.values()} == {MultiKrum, FLTrustCosine, NoRule}
    assert {Rule.MULTI_KRUM: OUTLIER_RULES[RuleName.MULTI_KRUM], Rule.FLTRUST_COSINE: OUTLIER_RULES[RuleName.FLTRUST]} == BY_ONCHAIN
    assert outlier_rule("none").onchain is None  # FedAvg has no on-chain value: only the evaluation runs it


def test_only_a_provable_rule_can_be_a_projects() -> None:
    assert project_rule("multi_krum") == Rule.MULTI_KRUM
    for name in ("fltrust", "none"):
        with pytest.raises(ConfigError, match=r"no round circuit.*\['multi_krum'\]"):
            project_rule(name)
    with pytest.raises(ConfigError, match="choose one of"):
        outlier_rule("median")


def test_manifest_json_keeps_its_rule_names() -> None:
    m = Manifest("digits-softmax", "ab", (0, 4), HyperParams(), RuleConfig(), SPEC)
    assert b'"rule":"multi_krum"' in m.to_json()
    assert Manifest.from_json(m.to_json()) == m and Manifest.from_json(m.to_json()).digest() == m.digest()


def test_eval_labels_are_rule_names() -> None:
    rules = default_rules()
    assert DEFAULT_RULE == "multi_krum" and next(iter(rules)) == DEFAULT_RULE
    assert list(rules) == ["multi_krum", "multi_krum(tau_pct=0)", "fltrust", "none"]
    assert all(c.rule in RULES and label.split("(")[0] == c.rule for label, c in rules.items())
    assert rule_label(RuleConfig(f=1, m=0)) == "multi_krum(f=1, m=0)"


def test_dispatch_runs_each_rules_pure_functions() -> None:
    U = torch.tensor([[4096, 0], [4000, 100], [-4096, 0], [4096, 1]], dtype=torch.int64)
    v = torch.tensor([1, 0], dtype=torch.int64)
    seq = [0, 1, 2, 3]
    krum_cfg = RuleConfig(f=1, m=0, tau_pct=0)
    dist, nsq, a = distances_norms_inner(U, v)
    out = aggregate_round(U, U, v, torch.zeros(2), SPEC, krum_cfg, seq)
    vv = int((v * v).sum())  # round 1 without a split step: the span is v's alone
    residual = residuals(nsq, [[x, 0, 0] for x in a], [[vv, 0, 0], [0, 0, 0], [0, 0, 0]])
    assert out.detail == screened_multi_krum(dist, nsq, a, seq, 1, 0, 0, krum_cfg.dup_pct, krum_cfg.floor_pct,
                                             residual=residual)
    assert out.inner == a
    ft = aggregate_round(U, U, v, torch.zeros(2), SPEC, RuleConfig(rule=RuleName.FLTRUST), seq)
    assert ft.detail == cosine_filter(U, v, 0) and ft.accepted == [True, True, False, True]
    assert aggregate_round(U, U, v, torch.zeros(2), SPEC, RuleConfig(rule=RuleName.NONE)).detail is None


def test_trainer_refuses_an_unknown_attack_by_name() -> None:
    # Checked first, before the node reads anything from its (here absent) project.
    with pytest.raises(ConfigError, match="unknown attack 'collusion'; choose one of sign_flip, scaling, gaussian"):
        TrainerNode(None, None, None, attack="collusion")
