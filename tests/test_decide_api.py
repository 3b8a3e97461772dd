"""GET /pz/decide in process (no broker needed): input checks, identity cookies, response headers."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from edge_worker.app import create_app
from edge_worker.config import DEV_COOKIE_SECRET, EdgeConfig
from edge_worker.identity import CookieSigner


def edge_client(tmp_path: Path, **env: str) -> httpx.AsyncClient:
    # A dead broker: the decision path never touches it, and lifespan (which would) is not run here.
    config = EdgeConfig.from_env({"PZ_STATE_DIR": str(tmp_path), "PZ_KAFKA_BOOTSTRAP": "127.0.0.1:1", **env})
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(config)), base_url="http://edge")


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("slots=Hero", "slot name 'Hero' is not lowercase letters, digits and _"),
        ("slots=hero,<b>", "slot name '<b>' is not lowercase letters, digits and _"),
        ("slots=,", "give 1 to 10 slot names, comma-separated"),
        ("slots=" + ",".join(f"s{i}" for i in range(11)), "give 1 to 10 slot names, comma-separated"),
    ],
)
async def test_bad_slot_lists_are_refused_with_the_field_and_reason(
    tmp_path: Path, query: str, reason: str
) -> None:
    async with edge_client(tmp_path) as client:
        for _ in range(2):  # the second answer comes from the remembered parse: the same
            response = await client.get(f"/pz/decide?{query}")
            assert response.status_code == 400
            assert response.json() == {"error": "invalid_request", "field": "slots", "reason": reason}
            assert "set-cookie" not in response.headers


async def test_only_get_and_head_are_answered(tmp_path: Path) -> None:
    async with edge_client(tmp_path) as client:
        response = await client.post("/pz/decide?slots=hero", content=b"{}")
        assert response.status_code == 405
        assert response.headers["allow"] == "GET, HEAD"
        assert response.json()["field"] == "method"
        head = await client.head("/pz/decide?slots=hero")
        assert head.status_code == 200 and head.content == b""


async def test_explanations_need_the_admin_token(tmp_path: Path) -> None:
    async with edge_client(tmp_path, PZ_ADMIN_TOKEN="t0ken") as client:
        refused = await client.get("/pz/decide?slots=hero&explain=1")
        assert refused.status_code == 403 and refused.json()["field"] == "explain"
        wrong = await client.get("/pz/decide?slots=hero&explain=1", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 403
        admin = {"Authorization": "Bearer t0ken"}
        allowed = await client.get("/pz/decide?slots=hero&explain=1", headers=admin)
        assert allowed.status_code == 200
        tried = allowed.json()["explain"]["slots"]["hero"]["tried"]
        assert [r["rule"] for r in tried] == ["similar_to_recent"]


async def test_a_new_visitor_gets_a_signed_cookie_and_a_returning_one_keeps_theirs(tmp_path: Path) -> None:
    async with edge_client(tmp_path) as client:
        first = await client.get("/pz/decide?slots=hero,recs")
        assert first.status_code == 200
        assert first.headers["content-type"] == "application/json"
        assert first.headers["cache-control"] == "private, no-store"
        assert int(first.headers["content-length"]) == len(first.content)
        set_cookie = first.headers["set-cookie"]
        assert set_cookie.startswith("pz_uid=")
        assert "HttpOnly" in set_cookie and "SameSite=lax" in set_cookie and "Path=/" in set_cookie
        assert f"Max-Age={400 * 86_400}" in set_cookie and "Secure" not in set_cookie
        value = set_cookie.split(";")[0].removeprefix("pz_uid=")
        assert CookieSigner(DEV_COOKIE_SECRET.encode()).verify(value) is not None
        client.cookies.set("pz_uid", value)
        again = await client.get("/pz/decide?slots=hero,recs")
        assert again.status_code == 200 and "set-cookie" not in again.headers
        assert set(again.json()["slots"]) == {"hero", "recs"}


async def test_forged_cookies_get_a_fresh_identity_and_https_makes_it_secure(tmp_path: Path) -> None:
    async with edge_client(tmp_path) as client:
        forged = await client.get(
            "/pz/decide?slots=hero",
            headers={"Cookie": "pz_uid=someone-else.AAAAAAAAAAAAAAAAAAAAAA", "X-Forwarded-Proto": "https"},
        )
        assert forged.status_code == 200
        assert forged.headers["set-cookie"].split(";")[0] != "pz_uid=someone-else.AAAAAAAAAAAAAAAAAAAAAA"
        assert "Secure" in forged.headers["set-cookie"]


async def test_slots_the_rules_do_not_have_are_reported_as_skipped(tmp_path: Path) -> None:
    async with edge_client(tmp_path) as client:
        body = (await client.get("/pz/decide?slots=hero,sidebar")).json()
        assert set(body["slots"]) == {"hero"}
        assert body["skipped"] == {"sidebar": "no such slot in rules builtin-1"}
        assert body["sync"]["stale"] is True  # no snapshot was ever loaded
