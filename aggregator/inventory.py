"""What cannot be sold now, from an inventory file the shop's systems keep up to date:
`{"out_of_stock": ["p0013", …]}`. Read again when it changes; a file that does not parse is
refused (logged, counted) and the last good set stays in force."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import orjson

from aggregator import metrics

log = logging.getLogger("pz.aggregator.inventory")
MAX_ITEMS = 1_000_000
MAX_ID_CHARS = 200


def parse_inventory(raw: bytes) -> frozenset[str]:
    """The out-of-stock set; ValueError naming the field and the reason."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(data, dict) or set(data) - {"out_of_stock"}:
        raise ValueError('expected {"out_of_stock": [item ids]} and nothing else')
    items = data.get("out_of_stock", [])
    if not isinstance(items, list) or len(items) > MAX_ITEMS:
        raise ValueError(f"out_of_stock: a list of at most {MAX_ITEMS} item ids")
    for i, item in enumerate(items):
        if not isinstance(item, str) or not item or len(item) > MAX_ID_CHARS:
            raise ValueError(f"out_of_stock[{i}]: an item id of 1 to {MAX_ID_CHARS} characters")
    return frozenset(items)


class Inventory:
    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._seen: tuple[int, int] | None = None
        self.out_of_stock: frozenset[str] = frozenset()

    def refresh(self) -> frozenset[str]:
        """The current set (re-read if the file changed since the last call)."""
        if self._path is None:
            return self.out_of_stock
        try:
            st = os.stat(self._path)
        except OSError as exc:
            if self._seen is not None:
                log.warning("inventory file unreadable; keeping the last set", extra={"error": exc.strerror})
            return self.out_of_stock
        seen = (st.st_mtime_ns, st.st_size)
        if seen == self._seen:
            return self.out_of_stock
        self._seen = seen
        try:
            self.out_of_stock = parse_inventory(self._path.read_bytes())
        except (OSError, ValueError) as exc:
            metrics.INVENTORY_REJECTED.inc()
            log.error(
                "inventory file refused; keeping the last set",
                extra={"file": str(self._path), "problem": str(exc)},
            )
        return self.out_of_stock
