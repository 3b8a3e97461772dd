"""The aggregator's HTTP side: health, metrics, snapshot sync and the admin trigger."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from collections.abc import AsyncIterator

import redis.asyncio as redis
from aiokafka import AIOKafkaProducer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from aggregator.config import AggregatorConfig
from aggregator.delta_relay import DeltaRelay
from aggregator.pipeline import Pipeline
from aggregator.rules_publisher import RulesPublisher
from aggregator.rules_source import RulesSource
from aggregator.snapshots import SnapshotBuilder
from aggregator.state_store import StateStore
from schemas.bounded_body import read_bounded
from schemas.delta_codec import frame_batches
from schemas.rules import MAX_RULES_BYTES, RuleSet, RulesInvalid
from schemas.settings import is_dev_key
from schemas.signing import verifier_for
from schemas.topics import EVENT_TOPICS

log = logging.getLogger("pz.aggregator")
_MAX_WAIT_MS = 60_000
_PING_TIMEOUT_S = 1.0
_REDIS_TIMEOUT_S = 10.0


def _parse_since(text: str) -> dict[int, int]:
    """`0:12,1:7` -> {0: 12, 1: 7}: the last sequence the edge applied, per partition."""
    since: dict[int, int] = {}
    for part in filter(None, text.split(",")):
        partition, sep, seq = part.partition(":")
        if not sep or not partition.isdigit() or not seq.isdigit():
            raise ValueError(f"expected PARTITION:SEQ pairs separated by commas, got {part[:40]!r}")
        since[int(partition)] = int(seq)
    return since


async def _partition_count(bootstrap: str) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        partitions = await producer.partitions_for(EVENT_TOPICS[0])
        return len(partitions)
    finally:
        await producer.stop()


def create_app(config: AggregatorConfig | None = None) -> Starlette:
    cfg = config or AggregatorConfig.from_env()
    publisher = RulesPublisher(cfg.kafka_bootstrap, cfg.signing_key)

    async def publish(accepted: RuleSet) -> None:
        # A new rule set goes out at once: on pz.rules, and in a fresh snapshot.
        await publisher.publish(accepted)
        await app.state.snapshots.build()

    rules = RulesSource(cfg.rules_file, cfg.snapshot_dir, cfg.rules_poll_s, publish)
    rules.load_initial()  # invalid rules and nothing to fall back on: refuse to start, with the problems

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if is_dev_key(cfg.signing_key):
            log.warning("using the development signing secret; set PZ_SIGNING_SECRET in production")
        # Timeouts: a Redis that hangs (no answer, no reset) fails the batch, which is rewound and
        # retried, instead of holding the loop forever.
        client = redis.Redis.from_url(
            cfg.redis_url, socket_timeout=_REDIS_TIMEOUT_S, socket_connect_timeout=_PING_TIMEOUT_S * 2
        )
        store = StateStore(client, cfg.user_ttl_s)
        pipeline = Pipeline(cfg, store, lambda: rules.current)
        builder = SnapshotBuilder(
            cfg,
            store,
            await _partition_count(cfg.kafka_bootstrap),
            lambda: rules.current,
            lambda: bool(pipeline.rebuilding),
        )
        app.state.redis, app.state.pipeline, app.state.snapshots = client, pipeline, builder
        relay = DeltaRelay(
            cfg.kafka_bootstrap, verifier_for(cfg.signing_key), cfg.relay_batches, cfg.fetch_max_wait_ms
        )
        app.state.relay = relay
        await pipeline.start()
        await builder.start()
        await publisher.start()
        await publisher.publish(rules.current)  # edges that are up learn the rules in force now
        await rules.start()
        await relay.start()
        log.info("aggregator started", extra={"port": cfg.http_port})
        try:
            yield
        finally:
            await relay.stop()
            await rules.stop()
            await publisher.stop()
            await builder.stop()
            await pipeline.stop()
            await client.aclose()

    async def healthz(request: Request) -> Response:
        # Liveness: a member whose consume loop ended would keep heartbeating and holding its
        # partitions while processing nothing; failing here gets it restarted.
        if not request.app.state.pipeline.running:
            return JSONResponse(
                {"status": "failed", "reason": "the consume loop has stopped"}, status_code=503
            )
        return JSONResponse({"status": "ok"})

    redis_down: dict[str, int | None] = {"since_ms": None}  # as readiness last found it

    async def readyz(request: Request) -> Response:
        """Ready only while the state it serves is whole and moving: partitions owned, none stalled,
        none being rebuilt after a state loss, Redis answering."""
        pipeline: Pipeline = request.app.state.pipeline
        try:
            redis_ok = bool(await asyncio.wait_for(request.app.state.redis.ping(), _PING_TIMEOUT_S))
        except (redis.RedisError, OSError, TimeoutError):
            redis_ok = False
        if redis_ok:
            redis_down["since_ms"] = None
        elif redis_down["since_ms"] is None:
            redis_down["since_ms"] = pipeline.redis_down_since_ms or int(time.time() * 1000)
        latest = request.app.state.snapshots.latest
        stalled = [f"{tp.topic}/{tp.partition}" for tp in pipeline.watch.stalled()]
        checks = {
            "pipeline": pipeline.running,
            "assigned": pipeline.assigned,
            "redis": redis_ok,
            "progress": not stalled,
            "state": not pipeline.rebuilding,
            "snapshot": latest is not None,
        }
        ready = all(checks.values())
        return JSONResponse(
            {
                "ready": ready,
                "checks": checks,
                "partitions": pipeline.owned,
                "redis_down_since_ms": redis_down["since_ms"],
                "stalled": stalled,
                "rebuilding": sorted(pipeline.rebuilding),
                "snapshot_id": latest.snapshot_id if latest is not None else None,
                "rules_version": rules.current.version,
                "rules_origin": rules.origin,
            },
            status_code=200 if ready else 503,
        )

    async def metrics_endpoint(request: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    async def snapshot(request: Request) -> Response:
        latest = request.app.state.snapshots.latest
        if latest is None:
            return JSONResponse({"error": "unavailable", "reason": "no snapshot built yet"}, status_code=503)
        headers = {"ETag": latest.etag, "X-PZ-Snapshot-Id": latest.snapshot_id, "Cache-Control": "no-cache"}
        if latest.etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        return Response(latest.sealed, media_type="application/x-pz-snapshot", headers=headers)

    async def deltas(request: Request) -> Response:
        try:
            since = _parse_since(request.query_params.get("since", ""))
        except ValueError as exc:
            return JSONResponse(
                {"error": "invalid_request", "field": "since", "reason": str(exc)}, status_code=400
            )
        wait_ms = request.query_params.get("wait_ms", "0")
        if not wait_ms.isdigit() or int(wait_ms) > _MAX_WAIT_MS:
            reason = f"an integer between 0 and {_MAX_WAIT_MS}"
            return JSONResponse(
                {"error": "invalid_request", "field": "wait_ms", "reason": reason}, status_code=400
            )
        answer = await request.app.state.relay.wait(since, int(wait_ms) / 1000)
        if answer.too_old:
            body = {
                "error": "resync_required",
                "partitions": answer.too_old,
                "reason": "the relay no longer holds batches that old: load a snapshot",
            }
            return JSONResponse(body, status_code=409)
        return Response(
            frame_batches(answer.batches),
            media_type="application/x-pz-deltas",
            headers={"Cache-Control": "no-store"},
        )

    def unauthorized(request: Request) -> Response | None:
        supplied = request.headers.get("authorization", "").removeprefix("Bearer ")
        if not cfg.admin_token:
            reason = "admin endpoints are off: set PZ_ADMIN_TOKEN to use them"
            return JSONResponse(
                {"error": "forbidden", "field": "Authorization", "reason": reason}, status_code=403
            )
        if not hmac.compare_digest(supplied.encode(), cfg.admin_token.encode()):
            return JSONResponse(
                {"error": "unauthorized", "field": "Authorization", "reason": "admin token required"},
                status_code=401,
            )
        return None

    async def put_rules(request: Request) -> Response:
        refused = unauthorized(request)
        if refused is not None:
            return refused
        body = await read_bounded(request, MAX_RULES_BYTES)
        if body is None:
            reason = f"larger than {MAX_RULES_BYTES // 1024} KiB"
            return JSONResponse(
                {"error": "invalid_rules", "field": "body", "reason": reason}, status_code=413
            )
        try:
            text = body.decode()
        except UnicodeDecodeError:
            return JSONResponse(
                {"error": "invalid_rules", "field": "body", "reason": "not UTF-8"}, status_code=400
            )
        try:
            accepted = await rules.put(text)
        except RulesInvalid as exc:
            problems = [
                {"line": p.line, "column": p.column, "path": "/".join(map(str, p.path)), "message": p.message}
                for p in exc.problems
            ]
            return JSONResponse(
                {"error": "invalid_rules", "reason": "the rules in force keep serving", "problems": problems},
                status_code=422,
            )
        latest = request.app.state.snapshots.latest
        return JSONResponse(
            {"version": accepted.version, "snapshot_id": latest.snapshot_id if latest else None}
        )

    async def get_rules(request: Request) -> Response:
        refused = unauthorized(request)
        if refused is not None:
            return refused
        return Response(rules.current.to_json(), media_type="application/json")

    async def build_snapshot(request: Request) -> Response:
        refused = unauthorized(request)
        if refused is not None:
            return refused
        built = await request.app.state.snapshots.build()
        return JSONResponse({"snapshot_id": built.snapshot_id, "users": built.users, "etag": built.etag})

    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_endpoint),
            Route("/sync/snapshot", snapshot),
            Route("/sync/deltas", deltas),
            Route("/admin/snapshot", build_snapshot, methods=["POST"]),
            Route("/admin/rules", put_rules, methods=["PUT"]),
            Route("/admin/rules", get_rules, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    return app
