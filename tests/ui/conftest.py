"""The UI tier: the web UI in a real headless Chromium. One browser per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from selenium import webdriver

from .page import start_browser


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    driver = start_browser()
    try:
        yield driver
    finally:
        driver.quit()
