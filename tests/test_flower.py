"""Flower clients as trainers: a NumPyClient trains a whole proven round on the in-process chain, and a client named
wrongly or fitting wrong parameters is refused with an error that says what was wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from aggregator.node import AggregatorNode, Opened, RoundResult
from market.chain.client import Chain
from market.chain.marketplace import Marketplace
from market.dev.demo import DemoConfig, accounts, project_file
from market.errors import ConfigError
from market.ml.flower import FlowerTrainer, NumPyClient, TaskClient, load_client
from market.ml.tasks import dirichlet_partition, get_task, layout
from market.parties.context import load_context
from market.parties.owner import create_project
from market.parties.trainer_node import Committed, Submitted, TrainerNode
from market.protocol.manifest import HyperParams, Manifest, RuleConfig
from market.protocol.quant import QuantSpec
from market.storage import LocalStorage
from zk.prover import Proof
from zk.verifier import VerifyingKey, verify

EXAMPLE = "examples.flower_client:client"


@pytest.mark.slow
def test_flower_clients_train_a_whole_proven_round(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chain, storage = Chain.in_process(), LocalStorage(tmp_path)
    cfg = DemoConfig(trainers=4, attackers=0, rounds=1, withhold_round=0)
    owner, agg_acct, *trainer_accts = accounts(chain, cfg.trainers)
    market = Marketplace.deploy(chain, owner)
    pid = create_project(market, storage, project_file(cfg), owner, agg_acct.address).pid
    ctx = load_context(market, storage, pid)
    aggregator = AggregatorNode(ctx, agg_acct)
    market.bond(pid, agg_acct)
    parts = dirichlet_partition(ctx.task.train.y.numpy(), cfg.trainers, 0.5, 0)  # what --partition I/4 trains on
    monkeypatch.setenv("FEDMARKET_FLOWER_DATA", "0/4")
    clients = [load_client(EXAMPLE)] + [TaskClient(ctx.task.build_model, ctx.task.train.subset(p)) for p in parts[1:]]
    trainers = [TrainerNode(ctx, acct, ctx.task.train.subset(parts[i]), flower=FlowerTrainer(clients[i], ctx.layout))
                for i, acct in enumerate(trainer_accts)]
    for trainer in trainers:
        trainer.step()
    market.start(pid, owner)
    assert isinstance(aggregator.step(), Opened)
    assert all(isinstance(trainer.step(), Committed) for trainer in trainers)
    assert all(isinstance(trainer.step(), Submitted) for trainer in trainers)
    result = aggregator.step()
    assert isinstance(result, RoundResult)
    assert result.flags == [0, 0, 0, 0] and sorted(result.submitted) == [0, 1, 2, 3] and all(result.scores)
    assert verify(VerifyingKey.load(aggregator.circuit_dir / "verification_key.json"), Proof(result.proof), [result.public_input])


@pytest.mark.parametrize(("spec", "message"), [
    ("examples.flower_client", "takes module:attr, got 'examples.flower_client'"),
    ("examples.no_such_client:client", "module 'examples.no_such_client' does not import"),
    ("examples.flower_client:nope", "module 'examples.flower_client' has no attribute 'nope'"),
    ("examples.flower_client:DigitsClient", "'DigitsClient' cannot be called without arguments"),
    ("examples.flower_client:Config", "'Config' gives a dict, not a flwr NumPyClient"),
])
def test_a_client_that_does_not_load_is_named(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_client(spec)


def test_a_client_module_or_factory_that_raises_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The trainer's own code raising at import or in its factory: named, not a traceback (only ImportError was)."""
    (tmp_path / "broken_client.py").write_text("raise RuntimeError('no GPU here')\n")
    (tmp_path / "factory_client.py").write_text("def make():\n    raise KeyError('data')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match="module 'broken_client' does not import \\(RuntimeError: no GPU here\\)"):
        load_client("broken_client:client")
    with pytest.raises(ConfigError, match="make\\(\\) failed \\(KeyError: 'data'\\)"):
        load_client("factory_client:make")


class Returns(NumPyClient):
    """A client whose fit records what it was given and returns `make(parameters)`."""

    def __init__(self, make: Any) -> None:
        self.make, self.calls = make, list[tuple[list[np.ndarray], dict[str, Any]]]()

    def fit(self, parameters: list[np.ndarray], config: dict[str, Any]) -> Any:
        self.calls.append((parameters, config))
        return self.make(parameters), 1, {}


def fit(make: Any) -> tuple[torch.Tensor, Returns]:
    """One update (asked for twice) of a Returns client at a random global model of digits-softmax (layout 0.weight 10x64, 0.bias 10)."""
    client = Returns(make)
    trainer = FlowerTrainer(client, layout(get_task("digits-softmax").build_model()), "client X")
    g = torch.randn(650)
    manifest = Manifest(task="digits-softmax", spec_hash="00" * 32, view=(0, 650), hyper=HyperParams(), rule=RuleConfig(),
                        quant=QuantSpec())
    update = trainer.update(g, manifest, 7, 3, 11)
    assert torch.equal(trainer.update(g, manifest, 7, 3, 11), update) and len(client.calls) == 1  # a reveal refits nothing
    return update, client


def test_fit_gets_the_global_model_and_the_hyper_parameters_and_its_step_is_the_update() -> None:
    update, client = fit(lambda ps: [p + 1 for p in ps])
    assert torch.allclose(update, torch.ones(650))
    (parameters, config), = client.calls
    assert [p.shape for p in parameters] == [(10, 64), (10,)] and all(p.dtype == np.float32 for p in parameters)
    assert config == {"epochs": 10, "batch_size": 16, "lr": 1.0, "seed": 11, "round": 3, "project_id": 7,
                      "task": "digits-softmax"}


@pytest.mark.parametrize(("make", "message"), [
    (lambda ps: ps[:1], "client X's fit returned 1 arrays; the model has 2 parameters (0.weight, 0.bias)"),
    (lambda ps: [ps[0].T, ps[1]], "parameter '0.weight' of shape (64, 10); the model's is (10, 64)"),
    (lambda ps: [ps[0], np.full(10, np.nan)], "parameter '0.bias' with 10 non-finite values"),
    (lambda ps: [ps[0], np.array([np.inf] + [0.0] * 9)], "parameter '0.bias' with 1 non-finite values"),
])
def test_a_fit_with_wrong_parameters_is_named(make: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        fit(make)
