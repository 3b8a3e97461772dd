"""Header-based personalization: what the edge tells the origin about the visitor it forwards.

Three request headers, names configurable: the user's segments, the variant chosen per slot, and a
bucket, a number below `buckets` (at most 16) derived from the variant alone, so that an origin or
a CDN can put it in its cache key and `Vary` on it without one cache entry per user.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from schemas.profiles import Profile

MAX_BUCKETS = 16


@dataclass(frozen=True, slots=True)
class HeaderNames:
    segments: str = "x-pz-segments"
    variant: str = "x-pz-variant"
    bucket: str = "x-pz-bucket"

    def all(self) -> tuple[str, str, str]:
        return (self.segments, self.variant, self.bucket)


def variant_of(decision: Mapping[str, Mapping[str, Any]]) -> str:
    """`hero=default;recs=popular`: the rule that chose each slot, in a stable order."""
    return ";".join(f"{slot}={decision[slot].get('rule', '')}" for slot in sorted(decision))


def origin_headers(
    names: HeaderNames, profile: Profile | None, decision: Mapping[str, Mapping[str, Any]], buckets: int
) -> list[tuple[str, str]]:
    variant = variant_of(decision)
    bucket = int.from_bytes(hashlib.blake2b(variant.encode(), digest_size=4).digest(), "big") % buckets
    segments = ",".join(profile.segments) if profile is not None else ""
    return [(names.segments, segments), (names.variant, variant), (names.bucket, str(bucket))]
