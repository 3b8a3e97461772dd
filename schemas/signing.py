"""Signed envelopes for snapshots and delta batches (HMAC-SHA256 over the payload bytes).

The payload stays a FlatBuffer inside the envelope, so a verified envelope is read in place.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import flatbuffers
from flatbuffers import number_types, table, util

from schemas._generated import pz_generated as fb
from schemas.errors import DecodeError, SignatureError

SIGNED_IDENTIFIER = b"PZSG"
ALG_HMAC_SHA256 = "hmac-sha256"


@dataclass(frozen=True, slots=True)
class SigningKey:
    key_id: str
    secret: bytes


def _mac(key: SigningKey, payload: bytes | memoryview) -> bytes:
    return hmac.new(key.secret, payload, hashlib.sha256).digest()


def seal(payload: bytes, key: SigningKey) -> bytes:
    builder = flatbuffers.Builder(len(payload) + 128)
    payload_off = builder.CreateByteVector(payload)
    sig_off = builder.CreateByteVector(_mac(key, payload))
    alg_off = builder.CreateString(ALG_HMAC_SHA256)
    kid_off = builder.CreateString(key.key_id)
    fb.SignedStart(builder)
    fb.SignedAddAlg(builder, alg_off)
    fb.SignedAddKeyId(builder, kid_off)
    fb.SignedAddSignature(builder, sig_off)
    fb.SignedAddPayload(builder, payload_off)
    builder.Finish(fb.SignedEnd(builder), file_identifier=SIGNED_IDENTIFIER)
    return bytes(builder.Output())


def _vector_view(buf: memoryview, tab: table.Table, field_offset: int) -> memoryview:
    o = number_types.UOffsetTFlags.py_type(tab.Offset(field_offset))
    if o == 0:
        return buf[0:0]
    start = tab.Vector(o)
    return buf[start : start + tab.VectorLen(o)]


def unverified_payload(data: bytes | memoryview) -> memoryview:
    """The payload without checking the signature: for inspection tools only, never for serving."""
    buf = memoryview(data)
    if len(buf) < 8 or not util.BufferHasIdentifier(buf, 0, SIGNED_IDENTIFIER):
        raise DecodeError("not a signed pz envelope (file identifier PZSG missing)")
    try:
        env = fb.Signed.GetRootAs(buf, 0)
        return _vector_view(buf, env._tab, 10)  # noqa: SLF001
    except Exception as exc:
        raise DecodeError(f"malformed envelope: {exc}") from exc


def open_sealed(data: bytes | memoryview, keys: dict[str, SigningKey]) -> memoryview:
    """Verify an envelope and return its payload as a zero-copy view.

    Raises DecodeError for bytes that are not an envelope, SignatureError when it does not verify.
    """
    buf = memoryview(data)
    if len(buf) < 8 or not util.BufferHasIdentifier(buf, 0, SIGNED_IDENTIFIER):
        raise DecodeError("not a signed pz envelope (file identifier PZSG missing)")
    try:
        env = fb.Signed.GetRootAs(buf, 0)
        alg = env.Alg()
        key_id = (env.KeyId() or b"").decode()
        signature = bytes(_vector_view(buf, env._tab, 8))  # noqa: SLF001 - flatbuffers exposes no public accessor
        payload = _vector_view(buf, env._tab, 10)  # noqa: SLF001
    except Exception as exc:  # a torn buffer raises struct/index errors from deep inside flatbuffers
        raise DecodeError(f"malformed envelope: {exc}") from exc
    if alg != ALG_HMAC_SHA256.encode():
        raise SignatureError(f"unsupported signature algorithm {alg!r}")
    key = keys.get(key_id)
    if key is None:
        raise SignatureError(f"unknown signing key id {key_id!r}")
    if not hmac.compare_digest(signature, _mac(key, payload)):
        raise SignatureError("signature does not verify")
    return payload
