"""`GET /pz/decide?slots=hero,recs`: a whole page's decision as JSON, for pz.js and for sites that
call the edge themselves.

A plain ASGI app, not a Starlette endpoint: it is the edge's busiest route, and building Starlette's
Request and Response objects cost about as much as deciding the page (pz bench decide).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from edge_worker.attribution import AttributionSigner, add_tokens
from edge_worker.identity import CookiePolicy, CookieSigner, Identity, identity_cookie
from edge_worker.origin_headers import variant_of
from edge_worker.profile_store import ProfileStore
from edge_worker.request_parts import headers_of, query_of
from edge_worker.staleness import SyncHealth
from schemas.rules.compiler import Program
from schemas.rules.features import Facts

MAX_SLOTS = 10
_SLOT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_REMEMBERED_SLOT_LISTS = 1024
_JSON = (b"content-type", b"application/json")
_NO_STORE = (b"cache-control", b"private, no-store")

PageDecision = Callable[
    [Identity, Mapping[str, str], str, str, Sequence[str]], tuple[Program, Facts, Any, dict[str, Any]]
]


def parse_slots(requested: str) -> list[str] | str:
    """The slot names of a `slots` parameter, or why they are refused."""
    slots = [s for s in requested.split(",") if s]
    malformed = [s for s in slots if not _SLOT_NAME.match(s)]
    if malformed:
        return f"slot name {malformed[0][:40]!r} is not lowercase letters, digits and _"
    if not slots or len(slots) > MAX_SLOTS:
        return f"give 1 to {MAX_SLOTS} slot names, comma-separated"
    return slots


async def send_json(
    send: Send, status: int, body: bytes, extra_headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    headers = [_JSON, (b"content-length", b"%d" % len(body)), _NO_STORE, *extra_headers]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _error(error: str, field: str, reason: str) -> bytes:
    return orjson.dumps({"error": error, "field": field, "reason": reason})


class DecideApi:
    def __init__(
        self,
        *,
        decide_page: PageDecision,
        may_explain: Callable[[Mapping[str, str]], bool],
        signer: CookieSigner,
        cookies: CookiePolicy,
        attribution: AttributionSigner,
        health: SyncHealth,
        store: ProfileStore,
        visitor: Callable[[Mapping[str, str]], Identity],
    ) -> None:
        self._visitor = visitor
        self._decide_page = decide_page
        self._may_explain = may_explain
        self._signer = signer
        self._cookies = cookies
        self._attribution = attribution
        self._health = health
        self._store = store
        self._slot_lists: dict[str, list[str] | str] = {}  # pages ask for the same few lists

    def _slots(self, requested: str) -> list[str] | str:
        found = self._slot_lists.get(requested)
        if found is None:
            found = parse_slots(requested)
            if len(self._slot_lists) >= _REMEMBERED_SLOT_LISTS:
                self._slot_lists.clear()
            self._slot_lists[requested] = found
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            body = _error("method_not_allowed", "method", "use GET")
            await send_json(send, 405, body, [(b"allow", b"GET, HEAD")])
            return
        params = query_of(scope)
        headers = headers_of(scope)
        slots = self._slots(params.get("slots", "hero,recs"))
        if isinstance(slots, str):
            await send_json(send, 400, _error("invalid_request", "slots", slots))
            return
        explain = params.get("explain") == "1"
        if explain and not self._may_explain(headers):
            reason = "explanations need Authorization: Bearer PZ_ADMIN_TOKEN (or PZ_DEBUG=true)"
            await send_json(send, 403, _error("forbidden", "explain", reason))
            return
        identity = self._visitor(headers)  # consent first: without it, anonymous
        page, referrer = params.get("path", "/"), params.get("ref", "")
        program, facts, catalog, decision = self._decide_page(identity, headers, page, referrer, slots)
        add_tokens(decision, self._attribution, variant_of(decision))
        answer: dict[str, Any] = {
            "slots": decision,
            "sync": self._health.stamp(self._store.snapshot, time.time(), program.version),
        }
        unknown = [s for s in slots if s not in program.slots]
        if unknown:
            answer["skipped"] = {s: f"no such slot in rules {program.version}" for s in unknown}
        if explain:
            answer["explain"] = program.explain(facts, catalog, [s for s in slots if s in program.slots])
        extra: tuple[tuple[bytes, bytes], ...] = ()
        cookie = identity_cookie(identity, scope, headers, self._cookies, self._signer)
        if cookie is not None:
            extra = ((b"set-cookie", cookie),)
        await send_json(send, 200, orjson.dumps(answer), extra)
