"""Browser tests: the real service (tests/integration's service_factory) driven through Debian's
Chromium by Playwright. The browser is the system's (/usr/bin/chromium, installed by
scripts/ensure_browser.sh); Playwright downloads none."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import service_factory  # noqa: F401 - the shared fixture

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), "Chromium is missing: run `bash scripts/ensure_browser.sh` (make install does)"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield chromium
        chromium.close()
