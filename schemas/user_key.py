"""The 64-bit user key: a keyed hash of the raw user id (never Python's `hash()`)."""

from __future__ import annotations

import hashlib


def user_key(raw_user_id: str, secret: bytes) -> int:
    digest = hashlib.blake2b(raw_user_id.encode(), digest_size=8, key=secret[:64]).digest()
    return int.from_bytes(digest, "big")
