"""The rules this edge decides with: compiled once per rule set, swapped with the snapshot.

Before any snapshot, and for snapshots that carry no rules, the built-in default rules apply.
Rules that do not validate here (they should have been refused upstream) are refused again and
counted; the rules in force keep deciding.
"""

from __future__ import annotations

import logging

from edge_worker import metrics
from schemas.rules import RulesInvalid, default_rules, load_rules_json
from schemas.rules.compiler import Program, compile_rules
from schemas.snapshot_codec import SnapshotReader

log = logging.getLogger("pz.edge.rules")


def _count_rule_error(slot: str, rule: str, exc: Exception) -> None:
    metrics.RULE_ERRORS.labels(slot).inc()


class RulesState:
    def __init__(self) -> None:
        self.program: Program = compile_rules(default_rules(), _count_rule_error)
        metrics.RULES_INFO.labels(self.program.version).set(1)

    def install(self, snapshot: SnapshotReader) -> None:
        """Compile the snapshot's rules if they are new (call before the snapshot goes live)."""
        if not snapshot.rules_json or snapshot.rules_version == self.program.version:
            return
        try:
            program = compile_rules(load_rules_json(snapshot.rules_json), _count_rule_error)
        except RulesInvalid as exc:
            metrics.RULES_REJECTED.inc()
            log.error(
                "snapshot rules refused; the rules in force keep deciding", extra={"problems": str(exc)}
            )
            return
        self.program = program
        metrics.RULES_INFO.clear()
        metrics.RULES_INFO.labels(program.version).set(1)
        log.info("rules installed", extra={"version": program.version})
