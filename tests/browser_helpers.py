"""Headless Chromium for the browser tests (Debian's chromium, driven by Playwright)."""

from __future__ import annotations

import shutil

from playwright.sync_api import ConsoleMessage, Page, Request, Response

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


_PROBLEMS: dict[int, list[str]] = {}  # per page: its page errors and console errors so far


def watch(page: Page) -> list[str]:
    """The page's errors and console errors, noted from now on (once per page)."""
    problems = _PROBLEMS.get(id(page))
    if problems is None:
        problems = _PROBLEMS[id(page)] = []
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))

        def console(message: ConsoleMessage) -> None:
            # A failed load is reported by "response" below, with its URL.
            if message.type == "error" and not message.text.startswith("Failed to load resource"):
                problems.append(f"console error: {message.text}")

        def response(answer: Response) -> None:
            if answer.status >= 400:
                problems.append(f"{answer.status} for {answer.url}")

        page.on("console", console)
        page.on("response", response)

        def failed(request: Request) -> None:
            if request.failure != "net::ERR_ABORTED":  # a beacon cut off by the next navigation is normal
                problems.append(f"failed: {request.url} ({request.failure})")

        page.on("requestfailed", failed)

        def closed(_: Page) -> None:
            _PROBLEMS.pop(id(page), None)

        page.on("close", closed)
    return problems


def open_page(page: Page, url: str) -> None:
    """Open `url` and wait until pz.js has filled the slots; fails on any page or console error."""
    problems = watch(page)
    page.goto(url)
    page.wait_for_selector("html[data-pz-ready='1']", timeout=10_000)  # pz.js filled the slots
    assert problems == [], f"{url}: {problems}"


def view_a_lamp_three_times(page: Page, edge_url: str) -> None:
    """Two other lamps first (some popularity in the category), then p0125 three times."""
    for other_lamp in ("p0121", "p0122"):
        open_page(page, f"{edge_url}/product/{other_lamp}")
    for _ in range(3):
        open_page(page, f"{edge_url}/product/p0125")
