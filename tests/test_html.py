"""`convbench report`: one self-contained page per run, checked as a file and in a real browser
(Debian's headless chromium driven by selenium; nothing downloads a browser)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from convbench.cli import app
from convbench.html import write_comparison_html, write_html
from extras import needs_extra

DATA = Path(__file__).parent / "data" / "synthetic_run"


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("html") / "run"
    shutil.copytree(DATA, folder, ignore=shutil.ignore_patterns("plots", "*.html"))
    return write_html(folder)


def test_the_page_is_one_file_that_fetches_nothing(page):
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>")
    srcs = re.findall(r'\ssrc="([^"]*)"', text)
    assert srcs and all(s.startswith("data:image/") for s in srcs)  # every figure inside the file
    hrefs = re.findall(r'\shref="([^"]*)"', text)
    assert all("/" not in h or h.startswith("#") for h in hrefs), hrefs  # only files beside it, and anchors
    assert not re.search(r"https?://|<link\b|@import|\bfetch\(|XMLHttpRequest", text)


def test_the_page_holds_every_case_machine_and_verdicts(page):
    text = page.read_text()
    data = json.loads(re.search(r'<script type="application/json" id="cases-data">(.*?)</script>', text, re.S).group(1))
    summary = __import__("pandas").read_csv(page.parent / "summary.csv")
    assert len(data["rows"]) == len(summary) and "algorithm" in data["columns"]
    for heading in ("The machine", "Warnings", "Verdicts", "Figures", "Every case", "Files"):
        assert heading in text
    assert '<a href="summary.csv">' in text


def test_report_command_writes_the_page_and_a_comparison(page, tmp_path):
    other = tmp_path / "b"
    shutil.copytree(page.parent, other)
    result = CliRunner().invoke(app, ["report", str(page.parent), str(other)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert (other / "compare.html").is_file() and "verdict" in (other / "compare.html").read_text()
    bad = CliRunner().invoke(app, ["report", str(tmp_path / "nope")])
    assert bad.exit_code == 2 and "Traceback" not in bad.output


def test_a_comparison_page_lists_changes_first(page, tmp_path):
    out = write_comparison_html(page.parent, page.parent, tmp_path / "c.html")
    assert "same" in out.read_text()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1280,900", f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    yield driver
    driver.quit()


@needs_extra("browser")
def test_in_a_browser_the_page_loads_without_errors_or_requests(page, browser):
    browser.get_log("performance")  # drain what the browser did before (its own new-tab page)
    browser.get(page.as_uri())
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
    requests = [json.loads(e["message"])["message"] for e in browser.get_log("performance")]
    urls = [m["params"]["request"]["url"] for m in requests if m["method"] == "Network.requestWillBeSent"]
    assert urls and not [u for u in urls if not u.startswith(("file:", "data:", "chrome:"))], urls
    sizes = browser.execute_script(
        "return Array.from(document.images).map(i => [i.naturalWidth, i.getBoundingClientRect().width]);")
    assert sizes and all(w > 0 and shown > 0 for w, shown in sizes), sizes


@needs_extra("browser")
def test_in_a_browser_sorting_reorders_and_the_filter_hides_rows(page, browser):
    from selenium.webdriver.common.by import By

    browser.get(page.as_uri())
    heads = browser.find_elements(By.CSS_SELECTOR, "#cases-table th")
    col = [h.text for h in heads].index("time_median_s")

    def column() -> list[str]:
        return [r.find_elements(By.TAG_NAME, "td")[col].text
                for r in browser.find_elements(By.CSS_SELECTOR, "#cases-table tbody tr")]

    before = column()
    heads[col].click()
    after = [float(v) for v in column() if v]
    assert after == sorted(after) and column() != before
    heads[col].click()
    desc = [float(v) for v in column() if v]
    assert desc == sorted(desc, reverse=True)
    n_all = len(browser.find_elements(By.CSS_SELECTOR, "#cases-table tbody tr"))
    box = browser.find_element(By.ID, "cases-filter")
    box.send_keys("indirect")
    rows = browser.find_elements(By.CSS_SELECTOR, "#cases-table tbody tr")
    assert 0 < len(rows) < n_all and all("indirect" in r.text for r in rows)
    assert "of" in browser.find_element(By.ID, "cases-info").text
