"""`pz snapshot inspect FILE` and `pz snapshot user FILE UID`: look inside a snapshot file."""

from __future__ import annotations

import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import orjson

from edge_worker.config import DEV_COOKIE_SECRET
from schemas.errors import DecodeError, SchemaError
from schemas.profiles import Profile
from schemas.settings import ConfigError, verifier_from_env
from schemas.signing import open_sealed, unverified_payload
from schemas.snapshot_codec import SnapshotReader
from schemas.user_key import user_key


class SnapshotToolError(Exception):
    """A file that cannot be read as a snapshot; the message says why."""


def _open(path: Path) -> tuple[SnapshotReader, str, int, int]:
    """(reader, signature status, file bytes, payload bytes)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SnapshotToolError(f"{path}: {exc.strerror or exc}") from None
    try:
        key = verifier_from_env(os.environ)
    except ConfigError as exc:
        raise SnapshotToolError(str(exc)) from None
    try:
        payload = open_sealed(data, {key.key_id: key})
        status = f"verified (key id {key.key_id!r})"
    except SchemaError as exc:
        try:
            payload = unverified_payload(data)
        except DecodeError:
            raise SnapshotToolError(f"{path}: not a pz snapshot file ({exc})") from None
        status = f"NOT VERIFIED: {exc} (set PZ_SIGNING_KEY_ID / PZ_SIGNING_SECRET to the aggregator's)"
    try:
        return SnapshotReader(payload), status, len(data), len(payload)
    except DecodeError as exc:
        raise SnapshotToolError(f"{path}: {exc}") from None


def inspect_snapshot(path: Path) -> dict[str, Any]:
    reader, status, file_bytes, payload_bytes = _open(path)
    return {
        "file": str(path),
        "signature": status,
        "snapshot_id": reader.snapshot_id,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(reader.created_ms / 1000)),
        "age_s": round(time.time() - reader.created_ms / 1000, 1),
        "users": reader.user_count,
        "partitions": {
            str(p): {"seq": pos.seq, "delta_offset": pos.delta_offset}
            for p, pos in sorted(reader.positions.items())
        },
        "popular_items": len(reader.popular),
        "categories": len(reader.popular_by_category),
        "file_bytes": file_bytes,
        "payload_bytes": payload_bytes,
        "bytes_per_user": round(payload_bytes / reader.user_count, 1) if reader.user_count else None,
    }


def find_user(path: Path, uid: str) -> dict[str, Any]:
    """UID is the raw id from the pz_uid cookie (hashed with PZ_COOKIE_SECRET) or `key:NUMBER`."""
    reader, status, _, _ = _open(path)
    if uid.startswith("key:"):
        if not uid[4:].isdigit():
            raise SnapshotToolError(f"{uid!r}: a key is written key:NUMBER (a 64-bit unsigned integer)")
        key = int(uid[4:])
    else:
        raw_id = uid.split(".")[0]  # a whole cookie value works too
        key = user_key(raw_id, os.environ.get("PZ_COOKIE_SECRET", DEV_COOKIE_SECRET).encode())
    profile = reader.find_user(key)
    return {
        "key": key,
        "signature": status,
        "found": profile is not None,
        "profile": _profile_json(profile) if profile is not None else None,
    }


def _profile_json(profile: Profile) -> dict[str, Any]:
    fields = asdict(profile)
    fields["items"] = [history._asdict() for history in profile.items]
    fields["lifetime"] = profile.lifetime._asdict() if profile.lifetime is not None else None
    return fields


def dumps(value: dict[str, Any]) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
