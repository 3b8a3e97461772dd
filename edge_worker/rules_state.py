"""The rules this edge decides with: compiled once per rule set, swapped with the snapshot.

Before any snapshot, and for snapshots that carry no rules, the built-in default rules apply.
Rules that do not validate here (they should have been refused upstream) are refused again and
counted; the rules in force keep deciding.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from edge_worker import metrics
from schemas.errors import SchemaError
from schemas.rules import RuleSet, RulesInvalid, default_rules, load_rules_json
from schemas.rules.channel import open_rules
from schemas.rules.compiler import Program, compile_rules
from schemas.signing import Verifier
from schemas.snapshot_codec import SnapshotReader

log = logging.getLogger("pz.edge.rules")


def _count_rule_error(slot: str, rule: str, exc: Exception) -> None:
    metrics.RULE_ERRORS.labels(slot).inc()


class RulesState:
    """Rules come from snapshots and from the rules channel; the newest published wins, so a
    snapshot built before a rules change cannot bring the old rules back."""

    def __init__(self, keys: Mapping[str, Verifier]) -> None:
        self._keys = keys
        self.program: Program = compile_rules(default_rules(), _count_rule_error)
        self.published_ms = 0
        metrics.RULES_INFO.labels(self.program.version).set(1)

    def install(self, snapshot: SnapshotReader) -> None:
        """Compile the snapshot's rules if they are new (call before the snapshot goes live)."""
        if not snapshot.rules_json or snapshot.created_ms <= self.published_ms:
            return
        if snapshot.rules_version == self.program.version:
            self.published_ms = snapshot.created_ms
            return
        try:
            rules = load_rules_json(snapshot.rules_json)
        except RulesInvalid as exc:
            self._refuse("snapshot", str(exc))
            return
        self._switch(rules, snapshot.created_ms, "snapshot")

    def apply_update(self, message: bytes) -> None:
        """A signed rules update from pz.rules: verified, validated, compiled, switched to."""
        try:
            rules, published_ms = open_rules(message, self._keys)
        except (SchemaError, RulesInvalid) as exc:
            self._refuse("channel", str(exc))
            return
        if published_ms <= self.published_ms:
            return
        if rules.version == self.program.version:
            self.published_ms = published_ms
            return
        self._switch(rules, published_ms, "channel")

    def _refuse(self, source: str, problem: str) -> None:
        metrics.RULES_REJECTED.inc()
        log.error(
            "rules refused; the rules in force keep deciding", extra={"source": source, "problem": problem}
        )

    def _switch(self, rules: RuleSet, published_ms: int, source: str) -> None:
        self.program = compile_rules(rules, _count_rule_error)
        self.published_ms = published_ms
        metrics.RULES_INFO.clear()
        metrics.RULES_INFO.labels(rules.version).set(1)
        log.info("rules installed", extra={"version": rules.version, "source": source})
