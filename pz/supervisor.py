"""`pz up` supervises what it started: a child that exits is reported in one line and started again,
same command and environment, after a backoff that doubles while it keeps failing (1 s up to 30 s).

The embedded broker keeps its topics in memory only, so its restart is said for what it is: what it
held is gone; it comes back empty on the same port with its topics made anew, and the aggregator,
finding the logs shorter than its committed offsets, consumes the new ones from their start.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from pz.embedded import create_topics_sync
from pz.local_stack import LocalStack
from pz.processes import StackError, wait_for_tcp

_FIRST_DELAY_S = 1.0
_MAX_DELAY_S = 30.0
_STABLE_AFTER_S = 60.0  # up this long after a restart: the next failure starts the backoff over


@dataclass(slots=True)
class _Restarts:
    count: int = 0
    due_s: float | None = None  # when the pending restart is due; None: running
    started_s: float = 0.0


class Supervisor:
    def __init__(self, stack: LocalStack, say: Callable[[str], None]) -> None:
        self._stack = stack
        self._say = say
        self._restarts: dict[str, _Restarts] = {}

    def check(self, now_s: float | None = None) -> None:
        now_s = time.monotonic() if now_s is None else now_s
        for name, process in list(self._stack.processes.items()):
            state = self._restarts.setdefault(name, _Restarts(started_s=now_s))
            if process.alive():
                if state.count and now_s - state.started_s > _STABLE_AFTER_S:
                    state.count = 0
                continue
            if state.due_s is None:
                delay_s = min(_MAX_DELAY_S, _FIRST_DELAY_S * 2**state.count)
                state.due_s = now_s + delay_s
                self._say(
                    f"pz up: {name} exited (code {process.popen.returncode}); restarting it in "
                    f"{delay_s:.0f} s (log: {process.log_path})"
                )
                if name == "broker":
                    self._say(
                        "pz up: the embedded broker keeps its topics in memory only: the events it held "
                        "are gone; it comes back empty and the aggregator consumes the new topics from "
                        "their start (point PZ_KAFKA_BOOTSTRAP at a real Kafka to keep them)"
                    )
            elif now_s >= state.due_s:
                self._restart(name)
                state.count += 1
                state.due_s = None
                state.started_s = now_s

    def _restart(self, name: str) -> None:
        self._stack.restart(name)
        if name != "broker":
            return
        try:
            port = int(self._stack.kafka_bootstrap.rsplit(":", 1)[1])
            wait_for_tcp(self._stack.processes[name], port)
            create_topics_sync(self._stack.kafka_bootstrap, self._stack.options.partitions)
        except (StackError, OSError) as exc:
            self._say(f"pz up: the broker did not come back: {exc}")
