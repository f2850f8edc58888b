"""The error tree: one branch of transient errors (the only one retried), reverts decoded with named
arguments, enum values by name and a hint, blob reasons as an enum, bad settings as ConfigError."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from market.chain.client import Chain
from market.chain.marketplace import ENUMS, HINTS, State, artifacts
from market.errors import (
    AggregationError,
    BlobReason,
    ChainError,
    ChainUnavailable,
    CompileError,
    ConfigError,
    ContractRevert,
    FedMarketError,
    InvalidBlob,
    ProofError,
    QuantizationError,
    StorageError,
    StorageUnavailable,
    ToolchainError,
    TransientError,
    solidity_name,
)
from market.parties.validate import validate_submission
from market.paths import ROOT
from market.storage import ContentMismatch, ContentTooLarge, IpfsStorage, LocalStorage, NodeUnreachable, cid_of
from market.toolchain.anvil import start_anvil
from market.toolchain.ipfs_node import NodeHandle
from market.toolchain.process import stop_process
from tests.marketplace_harness import deploy
from tests.test_blob import HEADER, LAYOUT, raw_blob
from tests.test_validate import submit
from zk.build import CircuitParams

DETERMINISTIC = (ContractRevert, ChainError, StorageError, ContentMismatch, ContentTooLarge, ConfigError,
                 ToolchainError, CompileError, InvalidBlob, QuantizationError, ProofError, AggregationError)


def test_transient_errors_are_one_branch_and_reverts_are_outside_it() -> None:
    for transient in (ChainUnavailable, StorageUnavailable, NodeUnreachable):
        assert issubclass(transient, TransientError) and issubclass(transient, FedMarketError)
    for cls in DETERMINISTIC:
        assert issubclass(cls, FedMarketError) and not issubclass(cls, TransientError), cls
    assert not issubclass(ContractRevert, ChainError)  # a sibling of the chain's other errors, never retried
    # Each unavailable error still reads as its layer's error, for code that handles any failure of that layer.
    assert issubclass(ChainUnavailable, ChainError) and issubclass(StorageUnavailable, StorageError)


def test_reverts_name_their_arguments_and_enum_values(chain: Chain) -> None:
    dep = deploy(chain)
    m, pid = dep.market, dep.create(min_trainers=1)
    dep.start(pid, 1)
    with pytest.raises(ContractRevert) as info:
        m.cancel(pid, dep.owner)
    err = info.value
    assert str(err) == f"NotCancellable(pid={pid}, current=Training)"
    assert err.name == "NotCancellable" and err.args_by_name == {"pid": pid, "current": State.TRAINING}
    assert err.args_by_name["current"] is State.TRAINING and err.error_args == (pid, 3)
    assert err.hint == HINTS["NotCancellable"]
    with pytest.raises(ContractRevert, match=rf"^WrongState\(pid={pid}, current=Training, expected=Open\)$"):
        m.start(pid, dep.owner)
    with pytest.raises(ContractRevert, match=rf"^StakeLocked\(pid={pid}, current=Training\)$") as info:
        m.withdraw_stake(pid, dep.trainers[0])
    assert info.value.hint == HINTS["StakeLocked"]
    stranger = dep.trainers[5].address
    with pytest.raises(ContractRevert) as info:
        m.open_round(pid, 1, dep.trainers[5])
    assert str(info.value) == f"NotAggregator(pid={pid}, caller={stranger})"  # addresses bare and checksummed
    assert info.value.args_by_name == {"pid": pid, "caller": stranger}


def test_enums_and_hints_match_the_contract() -> None:
    abi = artifacts()["FedMarket"].abi
    errors = [item for item in abi if item["type"] == "error"]
    assert set(HINTS) <= {e["name"] for e in errors}
    assert {i["internalType"] for e in errors for i in e["inputs"] if i["internalType"].startswith("enum ")} <= set(ENUMS)
    source = (ROOT / "contracts" / "FedMarket.sol").read_text()
    for internal, enum in ENUMS.items():
        body = re.search(rf"enum {internal.split('.')[-1]} {{([^}}]*)}}", source)
        assert body is not None, internal
        assert [solidity_name(member) for member in enum] == [m.strip() for m in body.group(1).split(",")]


def test_a_revert_without_a_hint_has_none(chain: Chain) -> None:
    dep = deploy(chain)
    with pytest.raises(ContractRevert) as info:
        dep.create(rule=2)
    assert str(info.value) == "InvalidParameter(name='rule')" and info.value.hint is None


def test_unreachable_chain_is_transient() -> None:
    with pytest.raises(ChainUnavailable, match="cannot reach"):
        Chain.connect("http://127.0.0.1:9", timeout=1)


@pytest.mark.anvil
def test_a_chain_node_that_goes_away_is_transient(tmp_path: Path) -> None:
    node = start_anvil(log=tmp_path / "anvil.log")
    try:
        chain = Chain.connect(node.url, timeout=2)
        assert chain.now() > 0
    finally:
        stop_process(node.pid)
    with pytest.raises(ChainUnavailable, match="no answer from the chain node"):
        chain.now()


def test_unreachable_storage_is_transient() -> None:
    with pytest.raises(TransientError):
        IpfsStorage("/ip4/127.0.0.1/tcp/9/http", timeout=1).get(str(cid_of(b"x")))


@pytest.mark.ipfs
def test_a_storage_timeout_is_transient(ipfs_api: NodeHandle) -> None:
    with pytest.raises(StorageUnavailable, match="within"):
        IpfsStorage(ipfs_api.api_addr, timeout=1).get(str(cid_of(b"never added " + os.urandom(8))))


def test_blob_reasons_are_an_enum_of_the_report_codes() -> None:
    assert [r.value for r in BlobReason] == [
        "cid_mismatch", "unavailable", "undecodable", "wrong_chain", "wrong_contract", "wrong_project", "wrong_round",
        "wrong_trainer", "wrong_spec", "wrong_shape", "wrong_dtype", "not_finite", "out_of_range", "too_large",
        "commitment_mismatch",
    ]
    err = InvalidBlob("not_finite", "w holds NaN")
    assert err.reason is BlobReason.NOT_FINITE and err.detail == "w holds NaN" and str(err) == "not_finite: w holds NaN"
    with pytest.raises(ValueError):
        InvalidBlob("not_a_reason")


def test_a_rejected_blob_names_its_reason_once(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "store")
    tensors = {s.name: ("F32", s.shape, np.full(s.shape, np.nan, "<f4").tobytes()) for s in LAYOUT}
    verdict = validate_submission(submit(store, raw_blob(tensors, HEADER.to_metadata())), HEADER, LAYOUT, store)
    assert verdict.reason is BlobReason.NOT_FINITE
    assert f"{verdict.reason}: {verdict.detail}".count("not_finite") == 1  # as the round report writes it


@pytest.mark.parametrize("settings", [{"n": 1, "d": 4}, {"n": 4, "d": 0}, {"n": 4, "d": 4, "bits": 40},
                                      {"n": 4, "d": 4, "f": -1}])
def test_bad_circuit_settings_are_config_errors(settings: dict[str, int]) -> None:
    with pytest.raises(ConfigError):
        CircuitParams(**settings)
