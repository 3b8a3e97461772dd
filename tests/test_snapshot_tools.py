from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from edge_worker.identity import CookieSigner
from schemas import (
    ItemHistory,
    PartitionPosition,
    Profile,
    SigningKey,
    SnapshotContent,
    encode_snapshot,
    seal,
)
from schemas.settings import DEV_SIGNING_KEY_ID, DEV_SIGNING_SECRET
from schemas.user_key import user_key

SECRET = b"tool-test-cookie-secret"


def pz(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "pz.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PZ_COOKIE_SECRET": SECRET.decode(), **(env or {})},
    )


def write_snapshot(path: Path, key: SigningKey) -> int:
    key_of_alice = user_key("alice", SECRET)
    users = [Profile(key_of_alice, (ItemHistory("p1", "c", (100,)),), ("vip",)), Profile(5)]
    content = SnapshotContent("snap-1", 1_000, {0: PartitionPosition(3, 9)}, ("p1",), {"c": ("p1",)}, users)
    path.write_bytes(seal(encode_snapshot(content), key))
    return key_of_alice


def test_inspect_reports_header_counts_sizes_and_signature(tmp_path: Path) -> None:
    path = tmp_path / "s.bin"
    write_snapshot(path, SigningKey(DEV_SIGNING_KEY_ID, DEV_SIGNING_SECRET.encode()))
    result = pz("snapshot", "inspect", str(path))
    assert result.returncode == 0, result.stderr
    info = orjson.loads(result.stdout)
    assert info["snapshot_id"] == "snap-1" and info["users"] == 2
    assert info["partitions"] == {"0": {"seq": 3, "delta_offset": 9}}
    assert info["signature"].startswith("verified") and info["file_bytes"] > info["payload_bytes"] > 0


def test_inspect_says_when_the_signature_does_not_verify(tmp_path: Path) -> None:
    path = tmp_path / "s.bin"
    write_snapshot(path, SigningKey(DEV_SIGNING_KEY_ID, b"someone-elses-secret"))
    info = orjson.loads(pz("snapshot", "inspect", str(path)).stdout)
    assert info["signature"].startswith("NOT VERIFIED")


def test_user_by_raw_id_cookie_or_key(tmp_path: Path) -> None:
    path = tmp_path / "s.bin"
    key = write_snapshot(path, SigningKey(DEV_SIGNING_KEY_ID, DEV_SIGNING_SECRET.encode()))
    for uid in ("alice", CookieSigner(SECRET).cookie_value("alice"), f"key:{key}"):
        result = pz("snapshot", "user", str(path), uid)
        assert result.returncode == 0, result.stderr
        found = orjson.loads(result.stdout)
        assert found["profile"]["segments"] == ["vip"]
    missing = pz("snapshot", "user", str(path), "bob")
    assert missing.returncode == 3 and orjson.loads(missing.stdout)["found"] is False


def test_bad_files_get_one_clear_line(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"\x00" * 100)
    for path, expected in ((tmp_path / "absent.bin", "No such file"), (garbage, "not a pz snapshot file")):
        result = pz("snapshot", "inspect", str(path))
        assert result.returncode == 1
        assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1
    result = pz("snapshot", "user", str(tmp_path / "absent.bin"), "key:x1")
    assert result.returncode == 1
