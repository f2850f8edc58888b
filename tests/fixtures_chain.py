"""Chain fixtures: the in-process EVM and a real anvil node that the tests start and stop themselves."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from market.chain.client import Chain
from market.toolchain.anvil import AnvilHandle, start_anvil
from market.toolchain.process import stop_process

BACKENDS = ["eth-tester", "anvil"]


@pytest.fixture(scope="session")
def anvil_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnvilHandle]:
    """One anvil process for the whole test session, stopped at the end."""
    handle = start_anvil(log=tmp_path_factory.mktemp("anvil") / "anvil.log")
    yield handle
    stop_process(handle.pid)


@pytest.fixture
def anvil_chain(anvil_node: AnvilHandle) -> Iterator[Chain]:
    """A Chain on the session's anvil; every test's changes are rolled back with evm_snapshot/evm_revert."""
    chain = Chain.connect(anvil_node.url)
    snapshot = chain.snapshot()
    yield chain
    chain.revert(snapshot)


@pytest.fixture(params=BACKENDS)
def chain(request: pytest.FixtureRequest) -> Chain:
    """The same test on both backends: a fresh in-process chain, and anvil (rolled back after the test)."""
    if request.param == "eth-tester":
        return Chain.in_process()
    return request.getfixturevalue("anvil_chain")
