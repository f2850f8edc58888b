"""The dashboard (issue 15): its data on hand-made posts, its pages and errors over the in-process chain, and a real
headless browser (Debian's chromium and chromedriver) following a small project on the devnet as it runs."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal, TypeVar

import pytest
import uvicorn
from fastapi.testclient import TestClient

from market.chain.client import Chain
from market.chain.marketplace import Marketplace
from market.dashboard.app import create_app
from market.dashboard.views import DashboardData, round_rows
from market.dev.demo import DemoConfig, DemoRun, run_demo
from market.storage import IpfsStorage, LocalStorage
from market.toolchain.process import free_port

T = TypeVar("T")

#: Where the browser test keeps its screenshot (the tests' output folder; README's docs/dashboard.png is a copy).
OUTPUT = Path(__file__).resolve().parents[1] / "build" / "test-output"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def _post(round_: int, flags: dict[str, int], decisions: dict[str, str], **extra: Any) -> dict[str, Any]:
    """One entry of market.parties.owner.round_reports."""
    return {"round": round_, "flags": flags, "decisions": decisions, "scores": dict.fromkeys(flags, 5),
            "val_accuracy": 0.5, "reasons": {"b": "norm below the floor"}, "gas": 400_000, "prove_s": 9.5,
            "dispute_end": None, "cured": [], "model_cid": "cid", **extra}


def test_the_round_table_keeps_the_post_that_settled_and_names_each_decision() -> None:
    both = {"a": "accepted (proven)", "b": "slashed: low update (proven)", "c": "absent"}
    history = [
        _post(1, {"a": 0, "b": 1, "c": 0}, both),
        _post(2, {"a": 2, "b": 0, "c": 0}, {**both, "a": "rejected blob", "b": "accepted (proven)"}, dispute_end=99),
        _post(2, {"a": 0, "b": 3, "c": 0}, {**both, "b": "excluded (proven, not slashed)"}, cured=["a"]),
    ]
    rows = round_rows(history)
    assert [r["round"] for r in rows] == [1, 2]
    assert [(r["submitted"], r["accepted"]) for r in rows] == [(2, 1), (2, 1)]  # c was absent: neither
    assert rows[0]["decisions"] == [{"trainer": "b", "flag": 1, "word": "slashed", "reason": "norm below the floor",
                                     "text": "slashed (norm below the floor)"}]
    assert [d["word"] for d in rows[1]["decisions"]] == ["excluded"]  # the re-post's flags, not the provisional flag 2
    assert (rows[0]["reposted"], rows[1]["reposted"], rows[1]["disputed"]) == (False, True, True)
    assert (rows[1]["gas"], rows[1]["prove_s"]) == (400_000, 9.5)


def test_pages_and_errors_on_a_marketplace_without_projects(tmp_path: Path) -> None:
    chain = Chain.in_process()
    market = Marketplace.deploy(chain, chain.accounts[0])
    client = TestClient(create_app(DashboardData(market, LocalStorage(tmp_path)), refresh_s=3))
    index = client.get("/")
    assert index.status_code == 200 and "No project on this marketplace yet." in index.text
    assert market.address in index.text and 'http-equiv="refresh" content="3' in index.text
    missing = client.get("/project/7")
    assert missing.status_code == 404 and f"no project 7 on the marketplace at {market.address}" in missing.text
    api = client.get("/api/project/7")
    assert api.status_code == 404 and api.json()["error"] == "ConfigError"
    assert client.get("/api/projects").json() == []
    nobody = client.get(f"/trainer/{chain.accounts[3].address}")
    assert nobody.status_code == 200 and "joined no project" in nobody.text
    for pid in ("-1", str(1 << 256)):  # ids web3 cannot encode: were 500 Internal Server Error
        bad = client.get(f"/project/{pid}")
        assert bad.status_code == 404 and f"no project {pid}: project ids are 1, 2, 3" in bad.text
    for path in ("/trainer/0x123", "/api/trainer/zzz"):  # were pages for an account nobody can have
        bad = client.get(path)
        assert bad.status_code == 404 and "is not an address" in bad.text


class Server:
    """The dashboard served by uvicorn in a thread, on a free port, until `stop`."""

    def __init__(self, data: DashboardData, refresh_s: float) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(create_app(data, refresh_s), host="127.0.0.1", port=self.port,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "the dashboard did not start"
            time.sleep(0.05)

    def url(self, path: str) -> str:
        """The address of one page."""
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        """Shut the server down."""
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless chromium through chromedriver, both Debian's (make test installs them: scripts/browser.sh)."""
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.fail(f"the browser test needs Debian's chromium and chromium-driver at {CHROMIUM} and {CHROMEDRIVER}: "
                    "run `bash scripts/browser.sh` (as root or with sudo)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()


def _between_reloads(read: Callable[[], T]) -> T:
    """`read()` of a page that reloads itself every second: a reload between finding an element and reading it
    leaves the element stale (or briefly absent), so read again, up to 5 s."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

    for _ in range(50):
        try:
            return read()
        except (NoSuchElementException, StaleElementReferenceException):
            time.sleep(0.1)
    return read()


def _rows(driver: Any, table: str) -> list[list[str]]:
    """The cells' text of a table's body rows, as a person reads them."""
    from selenium.webdriver.common.by import By

    def read() -> list[list[str]]:
        rows = driver.find_elements(By.CSS_SELECTOR, f"table#{table} tr")
        return [[td.text for td in row.find_elements(By.TAG_NAME, "td")] for row in rows[1:]]

    return _between_reloads(read)


def _text(driver: Any, css: str) -> str:
    """The visible text of one element."""
    from selenium.webdriver.common.by import By

    return _between_reloads(lambda: str(driver.find_element(By.CSS_SELECTOR, css).text))


@pytest.mark.slow
@pytest.mark.anvil
@pytest.mark.ipfs
def test_a_browser_follows_a_project_on_the_devnet(anvil_chain: Chain, anvil_node: Any, ipfs_api: Any, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    storage = IpfsStorage(ipfs_api.api_addr)
    cfg = DemoConfig(trainers=4, attackers=1, attacks=("sign_flip",), rounds=2, withhold_round=0, budget=4 * 10**18)
    served: list[Server] = []
    seen: dict[int, list[list[str]]] = {}

    def on_round(result: Any, run: DemoRun) -> None:
        if not served:  # the page opens while the project trains, from its own connections to the chain and IPFS
            market = Marketplace(Chain.connect(anvil_node.url), run.market)
            served.append(Server(DashboardData(market, IpfsStorage(ipfs_api.api_addr)), refresh_s=1))
            browser.get(served[0].url(f"/project/{run.pid}"))
        # the page reloads itself: the round appears without the test asking for it
        def shown(d: Any) -> list[list[str]] | Literal[False]:
            rows = _rows(d, "rounds")
            return rows if len(rows) == result.round else False

        seen[result.round] = WebDriverWait(browser, 60).until(shown)
        if result.round < cfg.rounds:  # the last post ends the project
            assert _text(browser, "#state") == "TRAINING"

    try:
        run = run_demo(cfg, anvil_chain, storage, on_round=on_round)
        assert run.checks["funds_conserved"] and run.checks["proofs_verified_on_chain_and_py_ecc"]
        server = served[0]
        browser.get(server.url(f"/project/{run.pid}"))
        assert _text(browser, "#state") == "FINISHED"
        assert browser.find_elements(By.CSS_SELECTOR, 'meta[http-equiv="refresh"]') == []  # a finished project stays put
        rounds = _rows(browser, "rounds")
        assert [r[0] for r in rounds] == ["1", "2"] and seen[1][0][0] == "1"
        attacker = run.attackers[0]
        for r, result in zip(rounds, run.rounds):
            assert r[1] == f"{100 * result.accuracy:.1f}%"
            assert r[2] == f"{sum(result.flags[i] == 0 for i in result.submitted)}/{len(result.submitted)}"
            # the sign flipper, excluded for its direction (not slashed)
            assert f"{attacker[:6]}…{attacker[-4:]}: excluded (does not move along the validation direction)" in r[3]
            assert r[4] == f"{result.gas:,}" and r[5] == f"{round(result.prove_s, 3):.1f} s"
        accuracy = browser.find_element(By.CSS_SELECTOR, "#accuracy-plot svg")
        assert accuracy.size["height"] > 100 and "accuracy per round" in accuracy.get_attribute("innerHTML")
        assert browser.find_element(By.CSS_SELECTOR, "#payouts-plot svg").size["height"] > 100
        assert _text(browser, "#conservation").startswith("Conserved: paid in")
        trainers = {row[1]: row for row in _rows(browser, "trainers")}
        assert trainers[attacker][4] == "0.0000" and trainers[attacker][6] == "0.0000"  # unpaid, never slashed
        height = browser.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]["height"]
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",  # the whole page in one screenshot
                                {"width": 1400, "height": int(height) + 20, "deviceScaleFactor": 1, "mobile": False})
        OUTPUT.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(OUTPUT / "dashboard.png"))

        honest = run.rounds[0].trainers[0]
        browser.get(server.url(f"/trainer/{honest}"))
        history = _rows(browser, f"history-{run.pid}")
        assert [h[0] for h in history] == ["1", "2"] and all(h[1] in ("accepted", "excluded") for h in history)
        browser.get(server.url("/"))
        (listed,) = [row for row in _rows(browser, "projects") if row[0] == f"project {run.pid}"]
        assert listed[1] == "finished" and listed[2] == "digits-softmax" and listed[8] == "2/2"
    finally:
        for server in served:
            server.stop()
