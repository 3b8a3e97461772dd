"""Headless Chromium for the browser tests (Debian's chromium, driven by Playwright)."""

from __future__ import annotations

import shutil

from playwright.sync_api import Page

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def open_page(page: Page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("html[data-pz-ready='1']", timeout=10_000)  # pz.js filled the slots


def view_a_lamp_three_times(page: Page, edge_url: str) -> None:
    """Two other lamps first (some popularity in the category), then p0125 three times."""
    for other_lamp in ("p0121", "p0122"):
        open_page(page, f"{edge_url}/product/{other_lamp}")
    for _ in range(3):
        open_page(page, f"{edge_url}/product/p0125")
