"""Header-based personalization: what the edge tells the origin about the visitor it forwards.

Three request headers, names configurable: the user's segments, the variant chosen per slot, and a
bucket, a number below `buckets` (at most 16) derived from the variant alone, so that an origin or
a CDN can put it in its cache key and `Vary` on it without one cache entry per user.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MAX_BUCKETS = 16


@dataclass(frozen=True, slots=True)
class HeaderNames:
    segments: str = "x-pz-segments"
    variant: str = "x-pz-variant"
    bucket: str = "x-pz-bucket"

    def all(self) -> tuple[str, str, str]:
        return (self.segments, self.variant, self.bucket)


def variant_of(decision: Mapping[str, Mapping[str, Any]]) -> str:
    """`hero=hero test/bold;recs=popular`: per slot, in a stable order, the rule that chose it and,
    in an experiment, the variant."""
    parts = []
    for slot in sorted(decision):
        chosen = decision[slot]
        variant = chosen.get("variant")
        parts.append(f"{slot}={chosen.get('rule', '')}" + (f"/{variant}" if variant else ""))
    return ";".join(parts)


def origin_headers(
    names: HeaderNames,
    segments: Sequence[str],
    decision: Mapping[str, Mapping[str, Any]],
    variant: str,
    buckets: int,
) -> list[tuple[str, str]]:
    """The three pz headers (`variant`: variant_of(decision)), then those the chosen rules set (the
    first slot to set one wins)."""
    bucket = int.from_bytes(hashlib.blake2b(variant.encode(), digest_size=4).digest(), "big") % buckets
    headers = [(names.segments, ",".join(segments)), (names.variant, variant), (names.bucket, str(bucket))]
    taken = {name for name, _ in headers}
    for slot in sorted(decision):
        for name, value in (decision[slot].get("headers") or {}).items():
            if name.lower() not in taken:
                taken.add(name.lower())
                headers.append((name.lower(), value))
    return headers
