"""The whole path with Ed25519 signatures: the aggregator signs, the edge holds only the public key."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pz.local_stack import LocalStack
from schemas.signing import Ed25519VerifyKey, generate_ed25519, verifier_for
from tests.conftest import running_stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.fixture(scope="module")
def ed25519_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    private = generate_ed25519("prod-1")
    public = verifier_for(private)
    assert isinstance(public, Ed25519VerifyKey)
    env = {
        "PZ_SIGNING_ALG": "ed25519",
        "PZ_SIGNING_KEY_ID": "prod-1",
        "PZ_SIGNING_PRIVATE_KEY": b64(private.private_key),
        "PZ_SIGNING_PUBLIC_KEY": b64(public.public_key),
    }
    with running_stack(
        Path(tmp_path_factory.mktemp("ed25519")), with_shop=False, partitions=2, extra_env=env
    ) as local:
        yield local


def test_decisions_follow_views_with_ed25519_and_the_edge_has_no_private_key(
    ed25519_stack: LocalStack,
) -> None:
    edge_env = Path(f"/proc/{ed25519_stack.processes['edge'].pid}/environ").read_bytes()
    assert b"PZ_SIGNING_PUBLIC_KEY=" in edge_env and b"PZ_SIGNING_PRIVATE_KEY=" not in edge_env
    with httpx.Client(base_url=ed25519_stack.edge_url, timeout=5) as other:  # another watch is popular
        view = {"type": "page_view", "item": "p0043", "category": "watches", "ts": int(time.time() * 1000)}
        assert other.post("/pz/collect", json=view).status_code == 202
    with httpx.Client(base_url=ed25519_stack.edge_url, timeout=5) as client:
        for _ in range(3):
            view = {
                "type": "page_view",
                "item": "p0042",
                "category": "watches",
                "ts": int(time.time() * 1000),
            }
            assert client.post("/pz/collect", json=view).status_code == 202
        deadline = time.monotonic() + 20
        rule = ""
        while rule != "similar_to_recent" and time.monotonic() < deadline:
            rule = client.get("/pz/decide", params={"slots": "recs"}).json()["slots"]["recs"]["rule"]
            time.sleep(0.05)
        assert rule == "similar_to_recent"
        sync = client.get("/pz/decide").json()["sync"]
        assert sync["snapshot_id"] and sync["stale"] is False  # snapshots verify too
    assert "PZ_SIGNING_PRIVATE_KEY" not in os.environ  # the test did not leak it into other stacks
