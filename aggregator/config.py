"""Aggregator configuration: a frozen value object read from `PZ_*` variables."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aggregator.anomalies import AnomalySettings
from aggregator.event_rates import RateAlarmSettings
from aggregator.intake import IntakeSettings
from aggregator.item_model import ItemModelSettings
from schemas.settings import (
    DEV_SIGNING_KEY_ID,
    DEV_SIGNING_SECRET,
    env_float,
    env_int,
    env_str,
    signer_from_env,
)
from schemas.signing import Signer, SigningKey


@dataclass(frozen=True, slots=True)
class AggregatorConfig:
    kafka_bootstrap: str = "127.0.0.1:9092"
    redis_url: str = "redis://127.0.0.1:6379/0"
    group_id: str = "pz-aggregator"
    # The name this process owns partitions under (aggregator/ownership.py): a process restarted under
    # the same name takes its partitions back at once. Empty: host name and HTTP port.
    member_name: str = ""
    lease_ms: int = 3_000  # partitions of a member that vanished wait this long for another
    stall_after_s: float = 30.0  # records beyond the offset and no progress this long: stalled
    http_host: str = "127.0.0.1"
    http_port: int = 8090
    window_s: int = 600  # views are kept this long
    cart_window_s: int = 86_400  # add-to-cart events
    purchase_window_s: int = 86_400  # purchases (a user idle for user_ttl_s is forgotten anyway)
    max_times_per_item: int = 16
    max_items_per_user: int = 32
    user_ttl_s: int = 86_400
    popular_limit: int = 50
    snapshot_interval_s: float = 30.0
    snapshot_dir: Path = Path(".pz/aggregator")
    fetch_max_wait_ms: int = 10
    session_timeout_ms: int = 6_000
    signing_key: Signer = SigningKey(DEV_SIGNING_KEY_ID, DEV_SIGNING_SECRET.encode())
    admin_token: str = ""
    relay_batches: int = 10_000  # recent delta batches held per partition for HTTP sync
    rules_file: Path | None = None  # YAML (schemas/rules); None: the built-in default rules
    rules_poll_s: float = 1.0  # how often the rules file is checked for changes
    inventory_file: Path | None = None  # {"out_of_stock": [...]}, read at every snapshot build if changed
    item_model: ItemModelSettings = ItemModelSettings()
    intake: IntakeSettings = IntakeSettings()
    anomalies: AnomalySettings = AnomalySettings()
    rate_alarms: RateAlarmSettings = RateAlarmSettings()

    @property
    def member(self) -> str:
        return self.member_name or f"{socket.gethostname()}:{self.http_port}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AggregatorConfig:
        e = os.environ if env is None else env
        d = cls()
        return cls(
            kafka_bootstrap=env_str(e, "PZ_KAFKA_BOOTSTRAP", d.kafka_bootstrap),
            redis_url=env_str(e, "PZ_REDIS_URL", d.redis_url),
            group_id=env_str(e, "PZ_AGGREGATOR_GROUP", d.group_id),
            member_name=env_str(e, "PZ_AGGREGATOR_MEMBER", d.member_name),
            lease_ms=env_int(e, "PZ_LEASE_MS", d.lease_ms, minimum=500, maximum=600_000),
            stall_after_s=env_float(e, "PZ_STALL_AFTER_S", d.stall_after_s, minimum=1.0),
            http_host=env_str(e, "PZ_AGGREGATOR_HOST", d.http_host),
            http_port=env_int(e, "PZ_AGGREGATOR_PORT", d.http_port, maximum=65535),
            window_s=env_int(e, "PZ_VIEW_WINDOW_S", d.window_s, minimum=1),
            cart_window_s=env_int(e, "PZ_CART_WINDOW_S", d.cart_window_s, minimum=1),
            purchase_window_s=env_int(e, "PZ_PURCHASE_WINDOW_S", d.purchase_window_s, minimum=1),
            max_times_per_item=env_int(
                e, "PZ_MAX_TIMES_PER_ITEM", d.max_times_per_item, minimum=1, maximum=255
            ),
            max_items_per_user=env_int(
                e, "PZ_MAX_ITEMS_PER_USER", d.max_items_per_user, minimum=1, maximum=1024
            ),
            user_ttl_s=env_int(e, "PZ_USER_TTL_S", d.user_ttl_s, minimum=60),
            popular_limit=env_int(e, "PZ_POPULAR_LIMIT", d.popular_limit, minimum=1, maximum=1000),
            snapshot_interval_s=env_float(e, "PZ_SNAPSHOT_INTERVAL_S", d.snapshot_interval_s, minimum=0.1),
            snapshot_dir=Path(env_str(e, "PZ_AGGREGATOR_STATE_DIR", str(d.snapshot_dir))),
            fetch_max_wait_ms=env_int(
                e, "PZ_FETCH_MAX_WAIT_MS", d.fetch_max_wait_ms, minimum=1, maximum=10_000
            ),
            session_timeout_ms=env_int(e, "PZ_SESSION_TIMEOUT_MS", d.session_timeout_ms, minimum=1000),
            signing_key=signer_from_env(e),
            admin_token=env_str(e, "PZ_ADMIN_TOKEN", d.admin_token),
            relay_batches=env_int(e, "PZ_RELAY_BATCHES", d.relay_batches, minimum=1, maximum=10_000_000),
            rules_file=Path(env_str(e, "PZ_RULES_FILE", "")) if env_str(e, "PZ_RULES_FILE", "") else None,
            rules_poll_s=env_float(e, "PZ_RULES_POLL_S", d.rules_poll_s, minimum=0.05),
            inventory_file=Path(env_str(e, "PZ_INVENTORY_FILE", ""))
            if env_str(e, "PZ_INVENTORY_FILE", "")
            else None,
            item_model=ItemModelSettings(
                session_gap_s=env_int(e, "PZ_SESSION_GAP_S", d.item_model.session_gap_s, minimum=1),
                half_life_s=env_int(e, "PZ_ITEM_HALF_LIFE_S", d.item_model.half_life_s, minimum=60),
                top_k=env_int(e, "PZ_SIMILAR_ITEMS", d.item_model.top_k, minimum=1, maximum=100),
            ),
            rate_alarms=RateAlarmSettings(
                tick_s=env_float(e, "PZ_RATE_TICK_S", d.rate_alarms.tick_s, minimum=0.1),
                spike_factor=env_float(e, "PZ_RATE_SPIKE_FACTOR", d.rate_alarms.spike_factor, minimum=1.1),
                drop_factor=env_float(e, "PZ_RATE_DROP_FACTOR", d.rate_alarms.drop_factor, minimum=1.1),
            ),
            anomalies=AnomalySettings(
                burst_window_s=env_int(e, "PZ_BOT_BURST_WINDOW_S", d.anomalies.burst_window_s, minimum=1),
                burst_events=env_int(e, "PZ_BOT_BURST_EVENTS", d.anomalies.burst_events, minimum=2),
            ),
            intake=IntakeSettings(
                allowed_lateness_s=env_int(
                    e, "PZ_ALLOWED_LATENESS_S", d.intake.allowed_lateness_s, minimum=0
                ),
                max_clock_skew_ms=env_int(e, "PZ_MAX_CLOCK_SKEW_MS", d.intake.max_clock_skew_ms, minimum=0),
            ),
        )
