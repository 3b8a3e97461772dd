"""The rules the aggregator publishes in every snapshot: from the rules file (watched for changes)
or from `PUT /admin/rules`. Rules that do not validate are refused with every problem, and the
ones in force keep serving; the last accepted rules are kept on disk for a restart.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from aggregator import metrics
from aggregator.tasks import cancel_and_wait
from schemas.rules import RuleSet, RulesInvalid, default_rules, load_rules_json, load_rules_text
from schemas.settings import ConfigError

log = logging.getLogger("pz.aggregator.rules")


class RulesSource:
    def __init__(
        self,
        rules_file: Path | None,
        state_dir: Path,
        poll_s: float,
        on_change: Callable[[RuleSet], Awaitable[object]],
    ) -> None:
        self._file = rules_file
        self._accepted = state_dir / "rules.accepted.json"
        self._poll_s = poll_s
        self._on_change = on_change
        self._seen: tuple[int, int] | None = None  # (mtime_ns, size) of the file last read
        self._task: asyncio.Task[None] | None = None
        self.current: RuleSet = default_rules()
        self.origin = "builtin"

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self._file) if self._file is not None else None
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size) if st is not None else None

    def load_initial(self) -> None:
        """The file's rules; if they are invalid, the last accepted ones (and an error logged); if
        there are none either, ConfigError with every problem: nothing to serve is better than guessing."""
        if self._file is None:
            return
        self._seen = self._stat()
        try:
            self._accept(load_rules_text(self._file.read_text()), f"file {self._file}")
            return
        except OSError as exc:
            problem = f"PZ_RULES_FILE={str(self._file)!r}: {exc.strerror}"
        except RulesInvalid as exc:
            problem = f"PZ_RULES_FILE={str(self._file)!r} is invalid: {exc}"
        metrics.RULES_REJECTED.labels("file").inc()
        try:
            self._accept(load_rules_json(self._accepted.read_bytes()), "last accepted", persist=False)
        except (OSError, RulesInvalid):
            raise ConfigError(problem) from None
        log.error("rules file refused, serving the last accepted rules", extra={"problem": problem})

    def _accept(self, rules: RuleSet, origin: str, persist: bool = True) -> None:
        self.current, self.origin = rules, origin
        metrics.RULES_INFO.clear()
        metrics.RULES_INFO.labels(rules.version, origin.split(" ")[0]).set(1)
        if persist:
            self._accepted.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._accepted.with_suffix(".tmp")
            tmp.write_bytes(rules.to_json())
            tmp.replace(self._accepted)
        log.info("rules accepted", extra={"version": rules.version, "origin": origin})

    async def put(self, text: str) -> RuleSet:
        """Validate and publish rules sent by an admin; RulesInvalid leaves the current ones in force."""
        try:
            rules = load_rules_text(text)
        except RulesInvalid:
            metrics.RULES_REJECTED.labels("admin").inc()
            raise
        self._accept(rules, "admin")
        await self._on_change(rules)
        return rules

    async def start(self) -> None:
        if self._file is not None:
            self._task = asyncio.create_task(self._watch(), name="pz-rules-watch")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._poll_s)
            seen = self._stat()
            if seen is None or seen == self._seen:
                continue
            self._seen = seen
            assert self._file is not None
            try:
                rules = load_rules_text(await asyncio.to_thread(self._file.read_text))
            except (OSError, RulesInvalid) as exc:
                metrics.RULES_REJECTED.labels("file").inc()
                log.error(
                    "changed rules file refused; the rules in force keep serving",
                    extra={"file": str(self._file), "problems": str(exc), "version": self.current.version},
                )
                continue
            if rules.to_json() == self.current.to_json():
                continue
            self._accept(rules, f"file {self._file}")
            try:
                await self._on_change(rules)
            except Exception:  # the next scheduled snapshot carries them anyway
                log.exception("publishing the changed rules failed; the next snapshot carries them")
