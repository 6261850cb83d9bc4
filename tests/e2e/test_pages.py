"""The collector pages in a real headless browser (Debian's chromium and chromium-driver, driven by Selenium).

A champion is trained on a file source in which one card is named `<script>alert(1)</script>`;
the stack (gateway, model replicas, decision worker) serves it. Screenshots of every page,
at desktop and at 390 px width, are saved in `test-artifacts/pages/`.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import register_rule_model, running_stack, scan_decisions
from workers.config import PipelineSettings
from workers.pipeline.sources.demo import DemoSource

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "pages"
XSS = "<script>alert(1)</script>"
CARDS = 30
DAY = date(2026, 1, 2)


def _browser(*extra_args: str):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        pytest.skip(
            "chromium and chromium-driver are not installed (apt-get install chromium chromium-driver; .ci/run does)"
        )
    pytest.importorskip("selenium")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    base = ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,900")
    for arg in (*base, *extra_args):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver_path), options=options)


@pytest.fixture(scope="module")
def site(redis_server, tmp_path_factory) -> Iterator[str]:
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    tmp = tmp_path_factory.mktemp("pages")
    prices = DemoSource(CARDS, 240).fetch(DAY)
    prices.loc[prices["card_id"] == "demo-00007", "card_name"] = XSS
    prices.to_csv(tmp / "prices.csv", index=False)
    register_rule_model(PipelineSettings(data_dir=tmp / "data", max_train_rows=100_000), DAY, tmp / "prices.csv")
    with running_stack(redis_server, tmp / "data", db=10) as stack:
        scan_decisions(stack, "1", CARDS)  # every card's last signal is known
        yield stack.url


@pytest.fixture(scope="module")
def browser(site: str) -> Iterator:
    driver = _browser()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def shoot(driver, name: str) -> None:
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def severe(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def wait_for(driver, script: str, timeout: float = 10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {script}")


def a_card_with_signals(site: str) -> tuple[str, list[dict]]:
    """A card whose history has BUY or SELL dates, with its /fair_price/batch answers for every date."""
    for card in (f"demo-{i:05d}" for i in range(CARDS)):
        points = httpx.get(f"{site}/cards/{card}/history").json()["points"]
        body = {"items": [{"card_id": card, "date": p["date"]} for p in points]}
        results = httpx.post(f"{site}/fair_price/batch", json=body, timeout=30).json()["results"]
        if any(r.get("signal") in ("BUY", "SELL") for r in results):
            return card, results
    raise AssertionError("no card with a BUY or SELL in its history")


def test_the_search_page_lists_filters_and_sorts(site: str, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.expected_conditions import staleness_of
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{site}/ui")
    rows = browser.find_elements(By.CSS_SELECTOR, "#cards tbody tr")
    assert len(rows) == CARDS and browser.title
    shoot(browser, "search")
    browser.find_element(By.ID, "q").send_keys("demo-0001")
    old = browser.find_element(By.ID, "cards")
    browser.find_element(By.CSS_SELECTOR, "form.search button").click()
    WebDriverWait(browser, 10).until(staleness_of(old))  # the results page replaced the first
    filtered = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "#cards tbody tr")]
    assert len(filtered) == 10 and all("demo-0001" in t for t in filtered), filtered
    browser.get(f"{site}/ui?sort=deviation")
    cells = browser.find_elements(By.CSS_SELECTOR, "#cards tbody tr td:last-child")
    values = [float(c.text.rstrip("%")) for c in cells if c.text != "-"]
    assert values == sorted(values) and len(values) == CARDS, values
    assert severe(browser) == []


def test_the_card_page_charts_every_point_with_the_band_and_signals(site: str, browser) -> None:
    from selenium.webdriver.common.by import By

    card, results = a_card_with_signals(site)
    history = httpx.get(f"{site}/cards/{card}/history").json()["points"]
    browser.get(f"{site}/ui/cards/{card}")
    held = wait_for(browser, "return window.pokewatchChart")
    assert held["market"] == len(history), (held, len(history))
    assert held["fair"] == held["low"] == held["high"] == len(results)
    assert held["markers"] == sum(r["signal"] in ("BUY", "SELL") for r in results) > 0
    assert browser.find_elements(By.CSS_SELECTOR, "#chart canvas"), "the chart is drawn"
    # Its text alternative: a description and the latest figures as a table.
    assert browser.find_element(By.ID, "chart").get_attribute("aria-label")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#latest tbody tr")) == 10
    assert browser.find_element(By.ID, "now-reason").text == results[-1]["reason"]
    # Weight and speed, as the browser measured them.
    timing = browser.execute_script(
        "const nav = performance.getEntriesByType('navigation')[0];"
        "const res = performance.getEntriesByType('resource');"
        "const paint = performance.getEntriesByName('first-contentful-paint')[0];"
        "return {bytes: nav.transferSize + res.reduce((s, r) => s + r.transferSize, 0),"
        " decoded: nav.decodedBodySize + res.reduce((s, r) => s + r.decodedBodySize, 0),"
        " fcp: paint ? paint.startTime : null, loaded: nav.loadEventEnd - nav.startTime}"
    )
    print(
        f"\ncard page: {timing['bytes'] / 1024:.0f} KB transferred ({timing['decoded'] / 1024:.0f} KB decoded), "
        f"first contentful paint {timing['fcp']:.0f} ms, load {timing['loaded']:.0f} ms"
    )
    assert timing["bytes"] < 500 * 1024
    assert timing["fcp"] is not None and timing["fcp"] < 1000
    shoot(browser, "card")
    assert severe(browser) == []


def test_a_past_date_quote_matches_the_api(site: str, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.expected_conditions import staleness_of
    from selenium.webdriver.support.ui import WebDriverWait

    card = "demo-00003"
    points = httpx.get(f"{site}/cards/{card}/history").json()["points"]
    day = points[len(points) // 2]["date"]
    browser.get(f"{site}/ui/cards/{card}")
    wait_for(browser, "return window.pokewatchChart")
    field = browser.find_element(By.ID, "date")
    browser.execute_script("arguments[0].value = arguments[1]", field, day)
    old = browser.find_element(By.ID, "chart")
    field.submit()
    WebDriverWait(browser, 10).until(staleness_of(old))  # the quote's page replaced the first
    wait_for(browser, "return document.getElementById('quote-fair')")
    api = httpx.post(f"{site}/fair_price", json={"card_id": card, "date": day}).json()
    shown = {
        k: browser.find_element(By.ID, f"quote-{k}").text for k in ("date", "market", "fair", "low", "high", "signal")
    }
    assert shown == {
        "date": api["date"],
        "market": str(api["market_price"]),
        "fair": str(api["fair_price"]),
        "low": str(api["fair_price_low"]),
        "high": str(api["fair_price_high"]),
        "signal": api["signal"],
    }
    shoot(browser, "card-past-date")
    assert severe(browser) == []


def test_a_card_named_like_a_script_renders_as_text(site: str, browser) -> None:
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    browser.get(f"{site}/ui?q=script")
    (row,) = browser.find_elements(By.CSS_SELECTOR, "#cards tbody tr")
    assert XSS in row.text
    browser.get(f"{site}/ui/cards/demo-00007")
    wait_for(browser, "return window.pokewatchChart")
    assert browser.find_element(By.ID, "card-name").text == XSS
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text
    headers = httpx.get(f"{site}/ui/cards/demo-00007").headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert severe(browser) == []


def test_every_page_has_a_title_and_fits_a_phone(site: str, browser) -> None:
    card, _ = "demo-00003", None
    pages = {"search": "/ui", "card": f"/ui/cards/{card}", "watchlists": "/ui/watchlists", "model": "/ui/model"}
    browser.set_window_size(390, 844)
    try:
        for name, path in pages.items():
            browser.get(f"{site}{path}")
            if name == "card":
                wait_for(browser, "return window.pokewatchChart")
            assert browser.title.strip(), path
            width = browser.execute_script("return document.documentElement.scrollWidth")
            viewport = browser.execute_script("return window.innerWidth")
            assert width <= viewport, f"{path}: {width} px wide in a {viewport} px window"
            shoot(browser, f"{name}-390px")
        assert severe(browser) == []
    finally:
        browser.set_window_size(1280, 900)


def test_the_model_page_shows_the_served_version(site: str, browser) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{site}/ui/model")
    assert browser.find_element(By.ID, "served").text == "1"
    replicas = browser.find_elements(By.CSS_SELECTOR, "#replicas tbody tr")
    assert {r.text.split()[0] for r in replicas} >= {"model-1", "model-2", "decision-1"}
    shoot(browser, "model")
