"""Edge configuration: a frozen value object read from `PZ_*` variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from edge_worker.forwarding import IpNetwork, parse_trusted_proxies
from edge_worker.origin_headers import MAX_BUCKETS, HeaderNames
from schemas.settings import (
    DEV_SIGNING_KEY_ID,
    DEV_SIGNING_SECRET,
    ConfigError,
    env_choice,
    env_float,
    env_int,
    env_str,
    verifier_from_env,
)
from schemas.signing import SigningKey, Verifier

DEV_COOKIE_SECRET = "pz-dev-cookie-secret"  # noqa: S105 - documented development default


def _base_url(name: str, text: str) -> str:
    """An http(s) base URL (scheme and host, maybe a port), or "" when unset."""
    if not text:
        return ""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"{name}={text!r}: expected an http:// or https:// URL such as https://shop.example"
        )
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise ConfigError(f"{name}={text!r}: the port is not a number") from None
    return text.rstrip("/")


def _trusted_proxies(text: str) -> tuple[IpNetwork, ...]:
    try:
        return parse_trusted_proxies(text)
    except ValueError as exc:
        raise ConfigError(f"PZ_TRUSTED_PROXIES: {exc}") from None


def _country(text: str) -> str:
    if text and not (len(text) == 2 and text.isascii() and text.isalpha()):
        raise ConfigError(f"PZ_DEFAULT_COUNTRY={text!r}: expected a two-letter country code such as DE")
    return text.upper()


def _timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"PZ_SITE_TIMEZONE={name!r}: not a time zone name such as Europe/Berlin") from None
    return name


@dataclass(frozen=True, slots=True)
class EdgeConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    server: str = "uvicorn"  # or "granian" (a Rust HTTP server: more requests/s per core)
    kafka_bootstrap: str = "127.0.0.1:9092"
    aggregator_url: str = "http://127.0.0.1:8090"
    partitions: int = 4  # of every event topic and pz.deltas; must match the topics
    origin_url: str = ""  # empty: no reverse proxy, only the /pz/ API
    state_dir: Path = Path(".pz/edge")
    cookie_name: str = "pz_uid"
    cookie_secret: bytes = DEV_COOKIE_SECRET.encode()
    cookie_max_age_s: int = 400 * 86_400
    cookie_secure: str = "auto"  # "auto": when the request came over https; "always"; "never"
    cookie_httponly: bool = True
    max_clock_skew_ms: int = 10 * 60 * 1000
    event_buffer_size: int = 10_000
    snapshot_poll_s: float = 5.0
    stale_after_s: float = 60.0  # decisions are marked stale after this long without news from sync
    profile_cache_size: int = 100_000
    country_header: str = "cf-ipcountry"  # set by the CDN in front (Fastly, Akamai: a header you choose)
    default_country: str = ""  # when that header is missing
    site_timezone: str = "UTC"  # the clock of `hour` and `weekday` in rules
    admin_token: str = ""  # lets /pz/decide?explain=1 answer (with Authorization: Bearer TOKEN)
    debug: bool = False  # explanations for anyone: development only
    signing_key: Verifier = SigningKey(DEV_SIGNING_KEY_ID, DEV_SIGNING_SECRET.encode())
    fetch_max_wait_ms: int = 10
    broker_fresh_s: float = 5.0  # readiness: the broker counts as reachable this long after its last answer
    decision_budget_s: float = (
        0.005  # a page decision slower than this is dropped (placeholders keep content)
    )
    origin_failures: int = 5  # consecutive failures that open the circuit breaker
    origin_open_s: float = 5.0
    origin_fallback_file: str = ""  # an HTML page served while the origin is down
    origin_host: str = ""  # the Host the origin is asked for; "": the client's
    public_url: str = ""  # the edge's public base URL for rewritten redirects; "": the one the client used
    trusted_proxies: tuple[IpNetwork, ...] = ()  # peers whose X-Forwarded-* and Forwarded are kept
    server_header: str = ""  # replaces the origin's Server header; "": the origin's passes
    header_names: HeaderNames = HeaderNames()
    buckets: int = MAX_BUCKETS
    delta_transport: str = "kafka"  # or "http": long-poll the aggregator (edges that cannot reach Kafka)
    consent: str = (
        "gpc"  # "off", "gpc" (honour Sec-GPC) or "required" (a consent cookie; edge_worker.consent)
    )
    consent_cookie: str = "pz_consent"
    release: str = "dev"  # the deployed release's name, reported on /readyz (rollout gates check it)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> EdgeConfig:
        e = os.environ if env is None else env
        d = cls()
        return cls(
            host=env_str(e, "PZ_EDGE_HOST", d.host),
            port=env_int(e, "PZ_EDGE_PORT", d.port, maximum=65535),
            server=env_choice(e, "PZ_SERVER", d.server, ("uvicorn", "granian")),
            kafka_bootstrap=env_str(e, "PZ_KAFKA_BOOTSTRAP", d.kafka_bootstrap),
            aggregator_url=env_str(e, "PZ_AGGREGATOR_URL", d.aggregator_url).rstrip("/"),
            partitions=env_int(e, "PZ_PARTITIONS", d.partitions, minimum=1, maximum=10_000),
            origin_url=_base_url("PZ_ORIGIN_URL", env_str(e, "PZ_ORIGIN_URL", d.origin_url)),
            state_dir=Path(env_str(e, "PZ_EDGE_STATE_DIR", str(d.state_dir))),
            cookie_name=env_str(e, "PZ_COOKIE_NAME", d.cookie_name),
            cookie_secret=env_str(e, "PZ_COOKIE_SECRET", DEV_COOKIE_SECRET).encode(),
            cookie_secure=env_choice(e, "PZ_COOKIE_SECURE", d.cookie_secure, ("auto", "always", "never")),
            cookie_httponly=env_choice(e, "PZ_COOKIE_HTTPONLY", "true", ("true", "false")) == "true",
            max_clock_skew_ms=env_int(e, "PZ_MAX_CLOCK_SKEW_MS", d.max_clock_skew_ms, minimum=1000),
            event_buffer_size=env_int(e, "PZ_EVENT_BUFFER_SIZE", d.event_buffer_size, minimum=1),
            snapshot_poll_s=env_float(e, "PZ_SNAPSHOT_POLL_S", d.snapshot_poll_s, minimum=0.05),
            stale_after_s=env_float(e, "PZ_STALE_AFTER_S", d.stale_after_s, minimum=1.0),
            profile_cache_size=env_int(e, "PZ_PROFILE_CACHE_SIZE", d.profile_cache_size, minimum=1),
            country_header=env_str(e, "PZ_COUNTRY_HEADER", d.country_header).lower(),
            default_country=_country(env_str(e, "PZ_DEFAULT_COUNTRY", d.default_country)),
            site_timezone=_timezone(env_str(e, "PZ_SITE_TIMEZONE", d.site_timezone)),
            admin_token=env_str(e, "PZ_ADMIN_TOKEN", d.admin_token),
            debug=env_choice(e, "PZ_DEBUG", "false", ("true", "false")) == "true",
            signing_key=verifier_from_env(e),
            broker_fresh_s=env_float(e, "PZ_BROKER_FRESH_S", d.broker_fresh_s, minimum=1.0),
            fetch_max_wait_ms=env_int(
                e, "PZ_FETCH_MAX_WAIT_MS", d.fetch_max_wait_ms, minimum=1, maximum=10_000
            ),
            decision_budget_s=env_float(e, "PZ_DECISION_BUDGET_MS", d.decision_budget_s * 1000, minimum=0.0)
            / 1000,
            origin_failures=env_int(e, "PZ_ORIGIN_FAILURES", d.origin_failures, minimum=1, maximum=1000),
            origin_open_s=env_float(e, "PZ_ORIGIN_OPEN_S", d.origin_open_s, minimum=0.1),
            origin_fallback_file=env_str(e, "PZ_ORIGIN_FALLBACK_FILE", d.origin_fallback_file),
            origin_host=env_str(e, "PZ_ORIGIN_HOST", d.origin_host),
            public_url=_base_url("PZ_PUBLIC_URL", env_str(e, "PZ_PUBLIC_URL", d.public_url)),
            trusted_proxies=_trusted_proxies(env_str(e, "PZ_TRUSTED_PROXIES", "")),
            server_header=env_str(e, "PZ_SERVER_HEADER", d.server_header),
            header_names=HeaderNames(
                env_str(e, "PZ_HEADER_SEGMENTS", d.header_names.segments).lower(),
                env_str(e, "PZ_HEADER_VARIANT", d.header_names.variant).lower(),
                env_str(e, "PZ_HEADER_BUCKET", d.header_names.bucket).lower(),
            ),
            buckets=env_int(e, "PZ_BUCKETS", d.buckets, minimum=1, maximum=MAX_BUCKETS),
            delta_transport=env_choice(e, "PZ_DELTA_TRANSPORT", d.delta_transport, ("kafka", "http")),
            consent=env_choice(e, "PZ_CONSENT", d.consent, ("off", "gpc", "required")),
            consent_cookie=env_str(e, "PZ_CONSENT_COOKIE", d.consent_cookie),
            release=env_str(e, "PZ_RELEASE", d.release),
        )
