"""A reviewer labels a queue in headless Chromium (Debian's chromium + chromium-driver, via Selenium),
keyboard only, against a real ``tracesieve serve --http`` process; the labels are then read back
through a real MCP client on the same server.

Set ``TRACESIEVE_SCREENSHOTS=docs/label`` to (re)write the README's screenshots while it runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mcp import Client

from tests.label_page_data import CRITERION, JUDGE, PRELABELLED, add_reviewer, build, csrf, email, judge_verdict
from tests.test_transports import REPO, start_http
from tests.live_server import stop_process

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
#: CI sets TRACESIEVE_REQUIRE_BROWSER=1 (.ci/run), so a missing browser fails there instead of skipping.
pytestmark = [pytest.mark.anyio, pytest.mark.skipif(
    not (CHROMIUM and DRIVER) and not os.environ.get("TRACESIEVE_REQUIRE_BROWSER"),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; .ci/run "
           "installs them)")]
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1280,900")
LABELLED = 15


def human_answer(i: int) -> str:
    """The reviewer's truth: the judge's verdict except on every seventh trace (disagreements)."""
    verdict = judge_verdict(i)
    return ("pass" if verdict == "fail" else "fail") if i % 7 == 0 else verdict


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    db = tmp_path_factory.mktemp("browser") / "page.duckdb"
    store = build(db)
    tokens = {"bob": add_reviewer(store, "bob")}
    store.release()
    made = subprocess.run([sys.executable, "-m", "server", "reviewer", "add", "ana", "--db", str(db)],
                          cwd=REPO, capture_output=True, text=True, check=True)
    tokens["ana"] = made.stdout.strip()
    assert tokens["ana"].startswith("tsr_") and "not shown again" in made.stderr
    proc, port = start_http(db, "--toolsets", "all")
    try:
        yield f"http://127.0.0.1:{port}", tokens
    finally:
        stop_process(proc)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert CHROMIUM and DRIVER, "chromium and chromedriver are not on PATH: apt-get install chromium chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="tracesieve-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def press(driver, keys: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    ActionChains(driver).send_keys(keys).perform()


def wait_for(driver, condition, timeout: float = 90) -> object:
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(driver, timeout).until(condition)


def trace_on_page(driver) -> str | None:
    """The trace id the item page shows (read in one script call, so a page change cannot go stale)."""
    return driver.execute_script("const e = document.querySelector('[data-trace-id]'); "
                                 "return e ? e.dataset.traceId : null;")


def snap(driver, name: str) -> None:
    folder = os.environ.get("TRACESIEVE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / f"{name}.png"))


async def mcp_call(base: str, tool: str, args: dict) -> dict:
    async with Client(f"{base}/mcp") as client:
        result = await client.call_tool(tool, args)
    assert not result.is_error, result.content
    return result.structured_content


async def test_a_reviewer_labels_fifteen_traces_with_the_keyboard_only(server, browser) -> None:
    from selenium.webdriver.common.keys import Keys

    base, tokens = server
    before = await mcp_call(base, "calibration_report", {"judge": JUDGE, "criterion": CRITERION, "resamples": 200,
                                                         "include_plot": False})
    assert before["n"] == len(PRELABELLED)

    browser.get(f"{base}/label/login")
    browser.switch_to.active_element.send_keys(tokens["ana"], Keys.ENTER)  # the token field has the focus
    wait_for(browser, lambda d: d.current_url.endswith("/label"))
    snap(browser, "criteria")
    press(browser, "1")
    answers: dict[str, str] = {}
    for n in range(LABELLED):
        trace_id = wait_for(browser, lambda d: (t := trace_on_page(d)) and t not in answers and t)
        html = browser.page_source
        assert email(int(trace_id[1:])) not in html and "&lt;EMAIL_1&gt;" in html
        assert "What the judges said" not in html  # not before she answered
        if n == 1:
            assert f"{JUDGE}</strong> said" in html  # ... but for the trace she just answered
            snap(browser, "item")
        value = human_answer(int(trace_id[1:]))
        if n % 5 == 0:
            press(browser, "r")
            browser.switch_to.active_element.send_keys(f"checked the citations of {trace_id}", Keys.ESCAPE)
        press(browser, value[0])
        answers[trace_id] = value
    wait_for(browser, lambda d: trace_on_page(d) not in answers)

    # Correction: u opens the last answered trace; answering again supersedes the label.
    last = trace_id
    press(browser, "u")
    wait_for(browser, lambda d: trace_on_page(d) == last)
    corrected = "pass" if answers[last] == "fail" else "fail"
    press(browser, corrected[0])
    wait_for(browser, lambda d: trace_on_page(d) not in answers)
    answers[last] = corrected

    labels = await mcp_call(base, "list_labels", {"criterion": CRITERION, "reviewer": "ana", "limit": 100})
    assert {lab["trace_id"]: lab["value"] for lab in labels["labels"]} == answers
    assert all(lab["source"] == "page" for lab in labels["labels"])
    with_rationale = [lab for lab in labels["labels"] if lab.get("rationale")]
    assert len(with_rationale) == 3 and all(lab["trace_id"] in lab["rationale"] for lab in with_rationale)
    history = await mcp_call(base, "list_labels", {"trace_ids": [last], "include_history": True})
    assert [(lab["value"], lab["current"]) for lab in history["labels"]] == [(corrected, True),
                                                                             (human_answer(int(last[1:])), False)]

    # A second reviewer's token cannot change them.
    victim = next(iter(answers))
    bob = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {tokens['bob']}"}, timeout=120)
    page = bob.get(f"/label/item?criterion={CRITERION}&trace={victim}").text
    refused = bob.post("/label/answer", data={"csrf": csrf(page), "criterion": CRITERION, "trace_id": victim,
                                              "value": "pass" if answers[victim] == "fail" else "fail"})
    assert refused.status_code == 409
    again = await mcp_call(base, "list_labels", {"trace_ids": [victim], "include_history": True})
    assert [(lab["reviewer"], lab["value"]) for lab in again["labels"]] == [("ana", answers[victim])]

    after = await mcp_call(base, "calibration_report", {"judge": JUDGE, "criterion": CRITERION, "resamples": 200,
                                                        "include_plot": False})
    assert after["n"] == len(PRELABELLED) + LABELLED
    disagreeing = {t for t, v in answers.items() if v != judge_verdict(int(t[1:]))}
    assert {d["trace_id"] for d in after["disagreements"]} == disagreeing and disagreeing

    press(browser, "q")
    wait_for(browser, lambda d: "/label/progress" in d.current_url)
    assert "Disagreements to look at next" in browser.page_source
    snap(browser, "progress")


async def test_a_failure_mode_is_proposed_and_a_trace_skipped_with_the_keyboard_only(server, browser) -> None:
    from selenium.webdriver.common.keys import Keys

    base, _ = server  # still signed in as ana from the test above
    browser.get(f"{base}/label")
    press(browser, "n")
    wait_for(browser, lambda d: d.current_url.endswith("/label/new"))
    name = browser.switch_to.active_element  # the name field has the focus
    name.send_keys("wrong_refund_amount", Keys.TAB,
                   "Quotes a refund the policy does not allow, or the wrong amount.", Keys.TAB, Keys.TAB)
    snap(browser, "propose")
    browser.switch_to.active_element.send_keys(Keys.ENTER)  # Enter in the scale field submits the form
    first = wait_for(browser, lambda d: "criterion=wrong_refund_amount" in d.current_url and trace_on_page(d))
    press(browser, "s")
    second = wait_for(browser, lambda d: (t := trace_on_page(d)) and t != first and t)
    assert second != first
    criteria = await mcp_call(base, "query_sql", {"sql": "SELECT name, kind, proposed_by FROM criteria"})
    assert criteria["rows"] == [["wrong_refund_amount", "binary", "ana"]]
    labels = await mcp_call(base, "list_labels", {"trace_ids": [first]})
    assert all(lab["criterion"] != "wrong_refund_amount" for lab in labels["labels"])  # a skip is not a label
