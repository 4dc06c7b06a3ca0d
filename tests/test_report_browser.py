"""The report as a reader sees it: opened in a real browser (Chromium, driven through selenium).

Skipped with its reason where no Chromium and chromedriver are installed (Debian:
``apt-get install chromium chromium-driver``; ``.ci/run`` installs them). Set
DEVICEBENCH_SCREENSHOTS=DIR to keep a screenshot of each page's first screen.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT
from .test_report import H200_RUN

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
WIDTHS = (1280, 480)  # a laptop, a phone
HEIGHT = 800


def _browser() -> tuple[str, str] | None:
    binary = next((path for path in map(shutil.which, BROWSERS) if path), None)
    driver = shutil.which("chromedriver")
    return (binary, driver) if binary and driver else None


@pytest.fixture(scope="module")
def chrome():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
    found = _browser()
    if found is None:
        pytest.skip("no Chromium with chromedriver installed (Debian: apt-get install chromium chromium-driver)")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = found[0]
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", f"--window-size={WIDTHS[0]},{HEIGHT}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=found[1]), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, Path]:
    """The report of the stored runs, and of a longer history made from the stored H200 run."""
    base = tmp_path_factory.mktemp("reports")
    history = base / "history"
    subprocess.run(
        [sys.executable, str(ROOT / "tests" / "data" / "make-history"), str(ROOT / H200_RUN), "--runs", "12", "--benchmarks", "48", "--out", str(history)],
        check=True,
        capture_output=True,
    )
    out = {}
    for name, source in (("stored", ROOT / "results"), ("history", history)):
        code = run_cli_quiet("report", str(source), "--out", str(base / name))
        assert code == 0
        out[name] = base / name / "index.html"
    return out


def run_cli_quiet(*args: str) -> int:
    from devicebench import cli

    try:
        return cli.main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)


def _open(driver, page: Path, width: int) -> None:
    driver.set_window_size(width, HEIGHT)
    driver.get_log("performance")  # drop what came before
    driver.get_log("browser")
    driver.get(page.as_uri())


def _requests(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


@pytest.mark.parametrize("which", ["stored", "history"])
@pytest.mark.parametrize("width", WIDTHS)
def test_the_report_reads_in_a_browser(chrome, reports, which, width, request):
    page = reports[which]
    _open(chrome, page, width)
    shots = os.environ.get("DEVICEBENCH_SCREENSHOTS")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        chrome.save_screenshot(str(Path(shots) / f"report-{which}-{width}.png"))
    # One offline file: the page itself is the only thing loaded (its charts are inside it).
    loaded = [url for url in _requests(chrome) if not url.startswith("data:")]
    assert loaded == [page.as_uri()], loaded
    # No console error.
    errors = [e for e in chrome.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
    # The answer is on the first screen: the summary and its first machine's sentence.
    first = chrome.execute_script(
        "const s = document.getElementById('summary'); const a = s && s.querySelector('.answers li');"
        "return a ? {top: s.getBoundingClientRect().top, bottom: a.getBoundingClientRect().bottom, height: window.innerHeight} : null;"
    )
    assert first is not None and first["top"] < first["height"] and first["bottom"] <= first["height"], first
    # The answer as a picture: each GPU machine's speed-ups over its CPU, in the summary, begun on the first screen on a laptop.
    picture = chrome.execute_script(
        "const i = document.querySelector('#summary img'); return i ? {top: i.getBoundingClientRect().top, alt: i.alt, height: window.innerHeight} : null;"
    )
    assert picture is not None and "GPU over its CPU, like for like" in picture["alt"] and " vs cpu-" in picture["alt"], picture
    if width == WIDTHS[0]:
        assert picture["top"] < picture["height"], picture
    # Every chart is drawn and fits the page; nothing makes the page scroll sideways.
    layout = chrome.execute_script(
        "const w = document.documentElement.clientWidth;"
        "return {width: w, scroll: document.documentElement.scrollWidth,"
        " images: [...document.images].map(i => ({alt: i.alt, right: i.getBoundingClientRect().right, natural: i.naturalWidth}))};"
    )
    assert layout["scroll"] <= layout["width"], layout["scroll"]
    for image in layout["images"]:
        assert image["natural"] > 0 and image["right"] <= layout["width"] + 0.5, image
    if which == "history":
        assert len(layout["images"]) == 48 + 1  # one chart per benchmark with two runs or more, and the speed-ups
