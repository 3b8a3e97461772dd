"""Publishes every accepted rule set on `pz.rules` (signed), so that edges switch in milliseconds;
snapshots carry the rules too, for edges that start later or read no Kafka."""

from __future__ import annotations

import logging
import time

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from schemas.rules import RuleSet
from schemas.rules.channel import seal_rules
from schemas.signing import Signer
from schemas.topics import RULES_TOPIC

log = logging.getLogger("pz.aggregator.rules")


class RulesPublisher:
    def __init__(self, bootstrap: str, key: Signer) -> None:
        self._bootstrap = bootstrap
        self._key = key
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(bootstrap_servers=self._bootstrap, acks="all")
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def publish(self, rules: RuleSet) -> None:
        """Best effort: with the broker down, the next snapshot still brings the rules to every edge."""
        if self._producer is None:
            return
        try:
            await self._producer.send_and_wait(
                RULES_TOPIC, seal_rules(rules, int(time.time() * 1000), self._key), partition=0
            )
        except KafkaError as exc:
            log.warning("rules not published on pz.rules; snapshots carry them", extra={"error": str(exc)})
