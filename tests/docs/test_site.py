"""The docs site: built with --strict as `make docs` builds it, then opened from the file system in
headless Chromium with every host name unresolvable, as a newcomer would use it.

Screenshots of the home page and of two task pages land in `test-artifacts/docs/`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.e2e.test_pages import _browser, wait_for

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "docs"


def build(site_dir: Path) -> subprocess.CompletedProcess[str]:
    mkdocs = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)]
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(mkdocs, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    site_dir = tmp_path_factory.mktemp("site")
    out = build(site_dir)
    assert out.returncode == 0, out.stderr[-3000:]
    return site_dir


class _Assets(HTMLParser):
    """The URLs a page loads by itself: scripts, stylesheets, images, icons, fonts."""

    def __init__(self) -> None:
        super().__init__()
        self.loaded: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in ("script", "img", "iframe") and a.get("src"):
            self.loaded.append(a["src"] or "")
        if tag == "link" and a.get("rel") in ("stylesheet", "icon", "preload", "modulepreload") and a.get("href"):
            self.loaded.append(a["href"] or "")


def test_make_docs_serves_the_site() -> None:
    """`make docs`, as the quick start names it, on a free port: the home page and a task page answer."""
    import signal
    import time

    import httpx

    from workers.local.embedded import free_port

    if not (ROOT / ".venv" / ".installed").exists():
        pytest.skip("`make docs` runs from the checkout's .venv (made by `make setup`)")
    addr = f"127.0.0.1:{free_port()}"
    proc = subprocess.Popen(
        ["make", "docs", f"DOCS_ADDR={addr}"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )  # fmt: skip
    try:
        deadline, home = time.monotonic() + 120, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                home = httpx.get(f"http://{addr}/", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.3)
        assert home is not None and home.status_code == 200 and "<title>PokeWatch" in home.text, proc.poll()
        page = httpx.get(f"http://{addr}/collectors/watchlists.html", timeout=5)
        assert page.status_code == 200 and 'id="get-a-webhook-when-a-card-drops-below-a-price"' in page.text
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def test_the_readme_is_a_landing_page_whose_links_resolve() -> None:
    import re

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.count("\n") <= 120
    assert "make up\nmake test\n" in text and "make docs" in text
    for target, anchor in re.findall(r"\]\(([^)#\s]+)(?:#([^)]+))?\)", text):
        if target.startswith("http"):
            continue
        assert (ROOT / target).exists(), target
        if anchor:
            headings = re.findall(r"^#+ (.+)$", (ROOT / target).read_text(encoding="utf-8"), re.MULTILINE)
            slugs = {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}
            assert anchor in slugs, (target, anchor)


def test_a_broken_link_fails_the_strict_build(tmp_path: Path) -> None:
    page = ROOT / "docs" / "_broken_link_probe.md"
    page.write_text("# Probe\n\n[gone](operators/alerts.md#no-such-alert)\n", encoding="utf-8")
    try:
        out = build(tmp_path / "site")
    finally:
        page.unlink()
    assert out.returncode != 0 and "no-such-alert" in out.stderr, out.stderr[-2000:]


def test_no_page_loads_anything_from_another_host(site: Path) -> None:
    pages = sorted(site.rglob("*.html"))
    assert len(pages) >= 25
    for page in pages:
        parser = _Assets()
        parser.feed(page.read_text(encoding="utf-8"))
        remote = [u for u in parser.loaded if u.startswith(("http:", "https:", "//"))]
        assert not remote, f"{page.relative_to(site)} loads {remote}"
    css = "".join(p.read_text(encoding="utf-8") for p in (site / "assets" / "stylesheets").glob("*.css"))
    assert "fonts.googleapis" not in css and "fonts.gstatic" not in css


@pytest.fixture(scope="module")
def offline_browser() -> Iterator:
    # Every host name unresolvable and every HTTP(S) request sent to a closed port: no network at all.
    driver = _browser("--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def _everything_loaded_locally(driver) -> None:
    names = driver.execute_script(
        "return [...document.querySelectorAll('script[src], link[href]:not([rel=canonical]), img[src]')]"
        ".map(e => e.src || e.href)"
    )
    assert names and all(n.startswith("file://") for n in names), [n for n in names if not n.startswith("file://")]
    header = driver.execute_script("return getComputedStyle(document.querySelector('.md-header')).position")
    assert header == "sticky", "Material's stylesheet applied"
    errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors


def test_a_collector_reaches_the_webhook_task_and_an_operator_the_lag_alert_in_two_clicks(
    site: Path, offline_browser
) -> None:
    from selenium.webdriver.common.by import By

    driver = offline_browser
    home = (site / "index.html").as_uri()
    for link, anchor, shot in (
        ("Get a webhook when my card drops below $X", "get-a-webhook-when-a-card-drops-below-a-price", "webhook-task"),
        ("Know what to do when the predict lag alert fires", "pokewatchstreamlaggrowing", "predict-lag-alert"),
    ):
        driver.get(home)
        wait_for(driver, "return document.readyState === 'complete'")
        if shot == "webhook-task":
            driver.save_screenshot(str(ARTIFACTS / "home.png"))
            _everything_loaded_locally(driver)
        # Click 1: the task on the home page; it opens the page at the section that answers it.
        driver.find_element(By.LINK_TEXT, link).click()
        wait_for(driver, f"return location.hash === '#{anchor}'")
        section = driver.find_element(By.ID, anchor)
        assert section.is_displayed() and driver.execute_script(
            "const r = arguments[0].getBoundingClientRect(); return r.top >= 0 && r.top < innerHeight", section
        ), "the section is on screen"
        driver.save_screenshot(str(ARTIFACTS / f"{shot}.png"))
        _everything_loaded_locally(driver)
    # The webhook task page holds the command; the alert section says what to do for the predict stream.
    text = driver.find_element(By.TAG_NAME, "article").text
    assert "pokewatch:predict" in text and "XINFO CONSUMERS pokewatch:predict model" in text


def test_the_navigation_and_search_work_from_the_file_system(site: Path, offline_browser) -> None:
    from selenium.webdriver.common.by import By

    driver = offline_browser
    driver.get((site / "index.html").as_uri())
    wait_for(driver, "return document.readyState === 'complete'")
    nav = {a.get_attribute("textContent").strip() for a in driver.find_elements(By.CSS_SELECTOR, "nav.md-nav a")}
    assert {"Collectors and REST clients", "Stream subscribers", "Operators", "Reference"} <= nav, nav
    box = driver.find_element(By.CSS_SELECTOR, "input.md-search__input")
    box.click()
    box.send_keys("webhook signature")
    found = wait_for(driver, "return document.querySelectorAll('.md-search-result__item').length", timeout=20)
    assert found >= 1
    first = driver.find_element(By.CSS_SELECTOR, ".md-search-result__item a").get_attribute("href")
    assert first.startswith("file://") and ("webhooks" in first or "watchlists" in first), first
    driver.save_screenshot(str(ARTIFACTS / "search.png"))
    _everything_loaded_locally(driver)
