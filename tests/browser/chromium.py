"""What every browser test needs: Debian's Chromium under Playwright (`playwright install` is never
run), the staff sign-in page as a person uses it, and axe-core for the accessibility checks."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.live.stack import PASSWORD

CHROMIUM = os.environ.get("VR_CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium tries to reach Google's hosts at every start, which
# this closed network refuses.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync", "--disable-dev-shm-usage"]
# axe-core from npm at test time, cached outside the repository (never committed).
AXE_DIR = Path(os.environ.get("VR_AXE_DIR", Path.home() / ".cache" / "vr-axe"))
HAVE_CHROMIUM = os.path.exists(CHROMIUM)


@contextlib.asynccontextmanager
async def chromium(*extra_args: str) -> AsyncIterator[Any]:
    """A headless Chromium, closed afterwards whatever happened."""
    if not HAVE_CHROMIUM:
        pytest.fail(f"no Chromium at {CHROMIUM}: install Debian's chromium (.ci/run does)")
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args])
        try:
            yield browser
        finally:
            with contextlib.suppress(Exception):
                await browser.close()


async def sign_in(page: Any, base: str, username: str, password: str = PASSWORD, next_path: str = "/staff/",
                  wait: bool = True) -> None:
    """Django's login page, as a person uses it; with `wait`, until the page it leads to is open."""
    await page.goto(f"{base}/accounts/login/?next={next_path}")
    await page.fill("#id_username", username)
    await page.fill("#id_password", password)
    await page.click("button[type=submit]")
    if wait:
        await page.wait_for_url(f"{base}{next_path.split('?')[0]}**")


def axe_script() -> Path:
    """axe.min.js, installed from npm once into AXE_DIR."""
    target = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
    if target.exists():
        return target
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is needed to fetch axe-core for the accessibility checks")
    AXE_DIR.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([npm, "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(AXE_DIR),
                             "axe-core@4"], capture_output=True, text=True, timeout=300)
    if result.returncode != 0 or not target.exists():
        pytest.fail(f"axe-core could not be installed from npm: {result.stderr[-2000:]}")
    return target


async def axe_violations(page: Any, *, impacts: tuple[str, ...] = ("serious", "critical")) -> list[dict[str, Any]]:
    """axe-core's violations of the page as it is now, of the given impacts."""
    script = await asyncio.to_thread(axe_script)
    await page.add_script_tag(path=str(script))
    result = await page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [v for v in result["violations"] if v.get("impact") in impacts]
