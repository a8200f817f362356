"""Driving the web UI in a real headless Chromium (Debian's chromium and chromedriver).

A thin page object: the element ids are the ones ``serving.ui.app`` gives its components, and every
wait is for something to show on the page, with a deadline (never a fixed sleep).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

WAIT_S = 60.0
_T = TypeVar("_T")


def chromium() -> tuple[str, str]:
    """Paths of chromium and chromedriver; the tier is skipped without them (CI installs
    them, and sets SEQGPT_UI_TESTS=require so that a missing browser fails instead)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser and driver:
        return browser, driver
    message = "no chromium/chromedriver: apt-get install -y chromium chromium-driver"
    if os.environ.get("SEQGPT_UI_TESTS") == "require":
        pytest.fail(message)
    pytest.skip(message)


def start_browser() -> webdriver.Chrome:
    """A headless Chromium with a desktop-sized window."""
    browser, driver = chromium()
    options = Options()
    options.binary_location = browser
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1000",
        "--lang=zh-CN",
    ):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(driver), options=options)


class Page:
    """The web UI at ``base_url`` in ``driver``."""

    def __init__(self, driver: webdriver.Chrome, base_url: str) -> None:
        self.driver = driver
        self.base_url = base_url

    def wait(self, condition: Callable[[], _T | None], timeout: float = WAIT_S) -> _T:
        """The first truthy value of ``condition`` (re-read while the page re-renders)."""

        def probe(_driver: webdriver.Chrome) -> _T | None:
            try:
                return condition()
            except StaleElementReferenceException:
                return None

        result: _T = WebDriverWait(self.driver, timeout).until(probe)
        return result

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def text(self, css: str) -> str:
        found = self.driver.find_elements(By.CSS_SELECTOR, css)
        return found[0].text if found else ""

    def value(self, elem_id: str) -> str:
        """The current value of the textbox ``elem_id``."""
        return str(self.find(f"#{elem_id} textarea, #{elem_id} input").get_attribute("value"))

    def wait_for_value(self, elem_id: str, expected: str) -> None:
        """Wait until the textbox ``elem_id`` holds ``expected`` (fail showing what it holds)."""
        try:
            self.wait(lambda: self.value(elem_id) == expected, timeout=10)
        except TimeoutException:
            raise AssertionError(f"{elem_id}: {self.value(elem_id)!r} != {expected!r}") from None

    def rows(self, elem_id: str) -> list[list[str]]:
        """The non-blank rows of the table ``elem_id``, as text."""
        # Gradio draws a table's rows as a virtual list of ARIA rows (its <table> only measures).
        rows = [
            [cell.text for cell in row.find_elements(By.CSS_SELECTOR, "[role=gridcell]")]
            for row in self.driver.find_elements(By.CSS_SELECTOR, f"#{elem_id} .virtual-row")
        ]
        return [row for row in rows if any(row)]

    def wait_for_rows(self, elem_id: str, expected: list[list[str]]) -> None:
        """Wait until the table ``elem_id`` shows ``expected`` (fail showing what it shows)."""
        try:
            self.wait(lambda: self.rows(elem_id) == expected, timeout=10)
        except TimeoutException:
            raise AssertionError(f"{elem_id}: {self.rows(elem_id)} != {expected}") from None

    def open(self, path: str = "/ui/") -> None:
        self.driver.get(self.base_url + path)

    def log_in(self, key: str) -> None:
        """Fill in the login form (the browser must be on it) and wait for the UI."""
        self.find("#key").send_keys(key)
        self.find("#login").click()
        self.wait_ready()

    def wait_ready(self) -> None:
        """Wait until the UI has rendered and its status light has been drawn once."""
        self.wait(
            lambda: self.driver.find_elements(By.CSS_SELECTOR, "#seqgpt-status .seqgpt-status")
        )

    def status(self) -> tuple[str, str]:
        """The light's state (``ok``, ``down``, ``lost``) and the words beside it."""
        box = self.find("#seqgpt-status .seqgpt-status")
        return str(box.get_attribute("data-state")), box.text

    def tab(self, name: str) -> None:
        """Open the tab whose title holds ``name`` (e.g. ``Extraction``)."""
        xpath = f"//button[@role='tab' and contains(., '{name}')]"
        self.driver.find_element(By.XPATH, xpath).click()

    def fill(self, elem_id: str, value: str) -> None:
        """Replace the text of the textbox ``elem_id`` with ``value``, as a user types it."""
        box = self.find(f"#{elem_id} textarea, #{elem_id} input")
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(Keys.DELETE)
        if value:
            box.send_keys(value)

    def run(self, button_id: str, result_css: str) -> str:
        """Click ``button_id`` and wait until ``result_css`` shows a new, non-empty text."""
        before = self.text(result_css)
        self.find(f"#{button_id}").click()
        return self.wait(lambda: (t := self.text(result_css)) and t != before and t)

    def screenshot(self, path: Path) -> Path:
        """A PNG of the whole window."""
        self.driver.save_screenshot(str(path))
        return path
