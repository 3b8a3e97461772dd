"""`pz up` stopped and started again on the same state directory: Redis comes back from its
append-only file, so every total counted before is still there; the embedded broker comes back
empty, and the aggregator, finding logs shorter than its committed offsets, counts the new events on
top (instead of skipping them up to the old offsets). Read back as a user would: the snapshot, with
`pz snapshot user`."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from pz.local_stack import LocalStack
from pz.snapshot_tools import find_user
from tests.conftest import running_stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def views_in_snapshot(stack: LocalStack, cookie: str, tmp_path: Path) -> int:
    body = httpx.get(f"{stack.aggregator_url}/sync/snapshot", timeout=10).content
    path = tmp_path / "snapshot.bin"
    path.write_bytes(body)
    found = find_user(path, cookie)
    return int(found["profile"]["lifetime"]["views"]) if found["found"] else 0


def send_views(stack: LocalStack, cookie: str | None, count: int) -> str:
    with httpx.Client(base_url=stack.edge_url, timeout=5) as client:
        if cookie:
            client.cookies.set("pz_uid", cookie)
        for _ in range(count):
            now_ms = int(time.time() * 1000)
            answer = client.post("/pz/collect", json={"type": "page_view", "item": "p0042", "ts": now_ms})
            assert answer.status_code == 202, answer.text
        return cookie or str(client.cookies["pz_uid"])


def wait_for_views(stack: LocalStack, cookie: str, want: int, tmp_path: Path) -> int:
    deadline = time.monotonic() + 60
    while (got := views_in_snapshot(stack, cookie, tmp_path)) != want and time.monotonic() < deadline:
        time.sleep(0.5)
    return got


def test_a_pz_up_restart_keeps_every_total_and_counts_new_events_on_top(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with running_stack(state, with_shop=False) as stack:
        cookie = send_views(stack, None, 5)
        assert wait_for_views(stack, cookie, 5, tmp_path) == 5
    with running_stack(state, with_shop=False) as stack:  # a new, empty broker; Redis from its file
        assert views_in_snapshot(stack, cookie, tmp_path) == 5  # kept
        send_views(stack, cookie, 3)
        assert wait_for_views(stack, cookie, 8, tmp_path) == 8  # counted on top, not skipped
        logged = (state / "logs" / "aggregator.log").read_text()
        assert "the broker's log ends below the committed offset" in logged  # said, not absorbed
