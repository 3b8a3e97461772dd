"""The edge worker: decide from memory, collect events, proxy the origin, and report on itself."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import random
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from edge_worker import metrics
from edge_worker.attribution import AttributionSigner, add_tokens
from edge_worker.broker_contact import BrokerContact
from edge_worker.circuit_breaker import CircuitBreaker
from edge_worker.collect import collect_endpoint
from edge_worker.config import DEV_COOKIE_SECRET, EdgeConfig
from edge_worker.consent import ANONYMOUS, ANONYMOUS_KEY, ConsentPolicy
from edge_worker.decide_api import DecideApi
from edge_worker.delta_apply import DeltaApplier
from edge_worker.delta_http import HttpDeltaSync
from edge_worker.delta_sync import DeltaSync
from edge_worker.event_sink import EventSink, OutboundRecord
from edge_worker.forwarding import ForwardingPolicy, spelled
from edge_worker.fragments import render_slot
from edge_worker.html_inject import Resolver
from edge_worker.identity import CookiePolicy, CookieSigner, Identity, identity_cookie
from edge_worker.origin_headers import origin_headers, variant_of
from edge_worker.origin_route import PROXIED_METHODS, OriginFirst
from edge_worker.profile_store import ProfileStore
from edge_worker.proxy import OriginProxy
from edge_worker.request_context import ContextReader, ContextSettings
from edge_worker.request_metrics import RequestMetrics
from edge_worker.request_parts import cookie_of, headers_of
from edge_worker.rules_state import RulesState
from edge_worker.snapshot_sync import SnapshotSync
from edge_worker.staleness import SyncHealth
from schemas.event_codec import encode_event
from schemas.events import Attribution, Event
from schemas.rules.compiler import EmptyCatalog, Exposure, Program
from schemas.rules.features import Facts
from schemas.settings import ConfigError, is_dev_key
from schemas.topics import EXPOSURE_TOPIC, partition_for_key

log = logging.getLogger("pz.edge")


def set_identity_cookie(
    response: Response, request: Request, identity: Identity, policy: CookiePolicy, signer: CookieSigner
) -> None:
    cookie = identity_cookie(identity, request.scope, request.headers, policy, signer)
    if cookie is not None:
        response.raw_headers.append((b"set-cookie", cookie))


def create_app(config: EdgeConfig | None = None) -> Starlette:
    cfg = config or EdgeConfig.from_env()
    signer = CookieSigner(cfg.cookie_secret)
    cookies = CookiePolicy(cfg.cookie_name, cfg.cookie_max_age_s, cfg.cookie_httponly, cfg.cookie_secure)
    attribution = AttributionSigner(cfg.cookie_secret)
    rules = RulesState({cfg.signing_key.key_id: cfg.signing_key})
    contexts = ContextReader(ContextSettings(cfg.country_header, cfg.default_country, cfg.site_timezone))
    pz_js = resources.files("edge_worker").joinpath("static/pz.js").read_bytes()
    pz_js_hash = hashlib.sha256(pz_js).hexdigest()[:16]
    pz_js_etag = f'"{pz_js_hash}"'
    pz_js_versioned = f"/pz/pz.{pz_js_hash}.js"
    store = ProfileStore(cfg.profile_cache_size)
    consent = ConsentPolicy(cfg.consent, cfg.consent_cookie)

    def visitor(headers: Mapping[str, str]) -> Identity:
        """Who asks: the cookie's visitor (or a new one), or, without consent, nobody in particular."""
        if not consent.allows(headers):
            return ANONYMOUS
        return signer.identify(cookie_of(headers, cfg.cookie_name))

    broker = BrokerContact(cfg.broker_fresh_s)
    sink = EventSink(cfg.kafka_bootstrap, cfg.event_buffer_size, broker)
    health = SyncHealth(cfg.stale_after_s)
    snapshots = SnapshotSync(
        store,
        cfg.aggregator_url,
        cfg.state_dir,
        cfg.signing_key,
        cfg.snapshot_poll_s,
        health,
        on_install=rules.install,
    )
    applier = DeltaApplier(store, cfg.signing_key, snapshots.request_refresh, health)
    deltas: DeltaSync | HttpDeltaSync
    if cfg.delta_transport == "http":
        deltas = HttpDeltaSync(store, cfg.aggregator_url, applier)
    else:
        deltas = DeltaSync(
            store, cfg.kafka_bootstrap, cfg.fetch_max_wait_ms, applier, rules.apply_update, broker
        )
    metrics.OVERLAY_USERS.set_function(lambda: store.overlay_size)
    metrics.SNAPSHOT_AGE_SECONDS.set_function(
        lambda: time.time() - store.snapshot.created_ms / 1000 if store.snapshot is not None else -1
    )
    proxy = None
    if cfg.origin_url:
        fallback = None
        if cfg.origin_fallback_file:
            try:
                fallback = Path(cfg.origin_fallback_file).read_bytes()
            except OSError as exc:
                raise ConfigError(
                    f"PZ_ORIGIN_FALLBACK_FILE={cfg.origin_fallback_file!r}: {exc.strerror}"
                ) from None
        policy = ForwardingPolicy(
            cfg.origin_url, cfg.origin_host, cfg.public_url, cfg.trusted_proxies, cfg.server_header
        )
        proxy = OriginProxy(policy, CircuitBreaker(cfg.origin_failures, cfg.origin_open_s), fallback)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if cfg.cookie_secret == DEV_COOKIE_SECRET.encode():
            log.warning("using the development cookie secret; set PZ_COOKIE_SECRET in production")
        if is_dev_key(cfg.signing_key):
            log.warning("verifying with the development signing secret; set PZ_SIGNING_* in production")
        snapshots.load_from_disk()
        await sink.start()
        await snapshots.start()
        await deltas.start()
        log.info("edge started", extra={"port": cfg.port, "origin": cfg.origin_url or None})
        try:
            yield
        finally:
            await deltas.stop()
            await snapshots.stop()
            await sink.stop()
            if proxy is not None:
                await proxy.aclose()

    def page_decision(
        identity: Identity,
        headers: Mapping[str, str],
        page: str,
        referrer: str,
        slots: Sequence[str],
        held_exposures: list[Exposure] | None = None,
    ) -> tuple[Program, Facts, Any, dict[str, Any]]:
        """One page's decision from memory: the profile is read once for every slot. Slots still
        undecided when the decision budget runs out get their defaults. Its exposures are logged,
        or, with `held_exposures`, put there for the caller to log once the decision is shown."""
        started = time.perf_counter()
        program = rules.program
        now_s = time.time()
        snapshot = store.snapshot  # one reference for the whole request, even if a swap happens meanwhile
        context = contexts.read(program.context_names, headers, page, referrer, now_s)
        profile = store.get(identity.key) if identity.key != ANONYMOUS_KEY else None
        facts = Facts(profile, context, int(now_s), identity.key)
        catalog = snapshot if snapshot is not None else EmptyCatalog()
        exposures: list[Exposure] = []
        decision = program.decide(facts, catalog, slots, exposures, started + cfg.decision_budget_s)
        took_s = time.perf_counter() - started
        metrics.DECISION_SECONDS.observe(took_s)
        if took_s > cfg.decision_budget_s:
            metrics.DECISIONS_OVER_BUDGET.inc()
        if identity.key == ANONYMOUS_KEY:
            pass  # in every holdout: nothing to expose, and nothing about them is kept
        elif held_exposures is not None:
            held_exposures.extend(exposures)
        elif exposures:
            log_exposures(exposures, identity.key, page, int(now_s * 1000))
        return program, facts, catalog, decision

    def log_exposures(exposures: list[Exposure], user_key: int, page: str, now_ms: int) -> None:
        for exposure in exposures:
            if exposure.sample < 1.0 and random.random() >= exposure.sample:  # noqa: S311 - sampling
                continue
            attribution = Attribution(exposure.slot, exposure.variant, exposure.experiment, exposure.rule)
            event = Event("exposure", user_key, now_ms, now_ms, path=page[:512], attribution=attribution)
            record = OutboundRecord(
                EXPOSURE_TOPIC,
                partition_for_key(user_key, cfg.partitions),
                user_key.to_bytes(8, "big"),
                encode_event(event),
            )
            if sink.offer(record):  # a full buffer drops exposures before it drops a page
                metrics.EXPOSURES.labels(exposure.experiment).inc()

    def may_explain(headers: Mapping[str, str]) -> bool:
        if cfg.debug:
            return True
        supplied = headers.get("authorization", "").removeprefix("Bearer ")
        return bool(cfg.admin_token) and hmac.compare_digest(supplied.encode(), cfg.admin_token.encode())

    async def collect(request: Request) -> Response:
        headers = headers_of(request.scope)
        if not consent.allows(headers):
            metrics.EVENTS_WITHOUT_CONSENT.inc()
            return Response(status_code=204)  # not an error for the page; nothing is kept
        identity = signer.identify(cookie_of(headers, cfg.cookie_name))
        response = await collect_endpoint(
            request,
            identity,
            sink,
            attribution,
            max_skew_ms=cfg.max_clock_skew_ms,
            partitions=cfg.partitions,
        )
        set_identity_cookie(response, request, identity, cookies, signer)
        return response

    async def pz_script(request: Request) -> Response:
        # The content-hashed URL never changes meaning: cache it for a year. The plain one is for
        # pages that cannot be changed with each release, so it is revalidated every few minutes.
        if request.url.path == pz_js_versioned:
            cache = "public, max-age=31536000, immutable"
        elif request.url.path == "/pz/pz.js":
            cache = "public, max-age=300"
        else:
            return JSONResponse(
                {"error": "not_found", "reason": f"pz.js is at {pz_js_versioned}"}, status_code=404
            )
        headers = {
            "ETag": pz_js_etag,
            "Cache-Control": cache,
            "Link": f"<{pz_js_versioned}>; rel=preload; as=script",
        }
        if pz_js_etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        return Response(pz_js, media_type="text/javascript", headers=headers)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        snapshot = store.snapshot
        reach = broker.state()
        checks = {"snapshot": snapshot is not None, "broker": reach.reachable}
        ready = all(checks.values())
        body = {
            "ready": ready,
            "release": cfg.release,
            "checks": checks,
            "broker": {
                "last_answer_s_ago": None
                if reach.last_answer_s_ago is None
                else round(reach.last_answer_s_ago, 1),
                "down_since_ms": reach.down_since_ms,
            },
            "snapshot_source": health.snapshot_source,
            "sync": health.stamp(snapshot, time.time(), rules.program.version),
            "pending_events": sink.pending,
        }
        return JSONResponse(body, status_code=200 if ready else 503)

    async def metrics_endpoint(request: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    strip_for: dict[int, tuple[Program, frozenset[str]]] = {}

    def stripped_headers(program: Program) -> frozenset[str]:
        """What a client may not send the origin: the edge's own headers and those the rules set."""
        found = strip_for.get(id(program))
        if found is None or found[0] is not program:
            names = frozenset(spelled(n) for n in (*cfg.header_names.all(), *program.header_names))
            strip_for.clear()  # one program at a time
            found = strip_for[id(program)] = (program, names)
        return found[1]

    async def origin(request: Request) -> Response:
        if proxy is None:
            return JSONResponse(
                {"error": "not_found", "reason": "no origin configured (PZ_ORIGIN_URL)"}, status_code=404
            )
        scope = request.scope
        headers_by_name = headers_of(scope)
        identity = visitor(headers_by_name)
        # Decided once per request, from memory: the same decision fills the page and the headers.
        query: bytes = scope.get("query_string", b"")
        page = scope["path"] + (f"?{query.decode('latin-1')}" if query else "")
        referrer = headers_by_name.get("referer", "")
        exposures: list[Exposure] = []
        program, facts, _, decision = page_decision(
            identity, headers_by_name, page, referrer, list(rules.program.slots), exposures
        )
        segments = program.segments_of(facts) if cfg.header_names.segments else []
        variant = variant_of(decision)
        headers = origin_headers(cfg.header_names, segments, decision, variant, cfg.buckets)

        def resolver() -> Resolver:
            # Only for a page that will be filled: images and scripts need no attribution tokens.
            add_tokens(decision, attribution, variant)
            return lambda name, attributes: render_slot(decision.get(name), attributes)

        strip = stripped_headers(program)
        # Set only where no shared cache may keep it (the proxy decides): never one visitor's id for all.
        cookie = identity_cookie(identity, scope, headers_by_name, cookies, signer)

        def shown() -> None:
            # A page was shown: its experiments' exposures count. An image or a script was not one.
            if exposures:
                log_exposures(exposures, identity.key, page, int(time.time() * 1000))

        return await proxy.forward(
            request,
            headers,
            inject=resolver,
            strip=strip,
            identity_cookie=cookie,
            on_page=shown,
            headers_by_name=headers_by_name,
        )

    app = Starlette(
        routes=[
            Route(
                "/pz/decide",
                DecideApi(
                    decide_page=page_decision,
                    may_explain=may_explain,
                    signer=signer,
                    cookies=cookies,
                    attribution=attribution,
                    health=health,
                    store=store,
                    visitor=visitor,
                ),
            ),
            Route("/pz/collect", collect, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
            Route("/pz/pz.js", pz_script),
            Route("/pz/pz.{version}.js", pz_script),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_endpoint),
            Route("/{path:path}", origin, methods=list(PROXIED_METHODS)),
        ],
        lifespan=lifespan,
    )
    app.state.store, app.state.sink, app.state.snapshots, app.state.deltas = store, sink, snapshots, deltas
    app.add_middleware(OriginFirst, handler=origin)
    app.add_middleware(RequestMetrics)
    return app
