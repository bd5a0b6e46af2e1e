"""Headless Chromium for the explorer's tests: selenium driving the system's Chromium (Debian's `chromium` and
`chromium-driver`). Without them the tests skip, and fail under CI=true (.ci/run installs them)."""

from __future__ import annotations

import shutil

import pytest

from oracle import ci

INSTALL = "apt-get install chromium chromium-driver && pip install -e '.[viz-test]'"


def _missing(what: str):
    if ci():
        pytest.fail(f"{what} is missing under CI=true: {INSTALL}", pytrace=False)
    pytest.skip(f"{what} is missing ({INSTALL} runs the explorer's browser tests)")


def chromium():
    """A headless Chromium session (selenium WebDriver) that keeps the page's console log."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("selenium")
    binary = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
    driver = shutil.which("chromedriver")
    if binary is None or driver is None:
        _missing("Chromium or its driver (chromedriver)")
    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,900"):
        opts.add_argument(arg)
    opts.binary_location = binary
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=opts, service=Service(driver))


def console_errors(driver) -> list:
    """The page's console messages of level SEVERE since the last call."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
