"""Signed envelopes for snapshots and delta batches.

Two algorithms: HMAC-SHA256 with a shared secret (the default), or Ed25519, with which the
aggregator holds the private key and edges only the public one, so that an edge that is broken into
cannot forge data for the others. The payload stays a FlatBuffer inside the envelope, so a verified
envelope is read in place. A key only ever verifies its own algorithm: an envelope cannot choose a
weaker check than the edge was configured for.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

import flatbuffers
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from flatbuffers import number_types, table, util

from schemas._generated import pz_generated as fb
from schemas.errors import DecodeError, SignatureError

SIGNED_IDENTIFIER = b"PZSG"
ALG_HMAC_SHA256 = "hmac-sha256"
ALG_ED25519 = "ed25519"


@dataclass(frozen=True, slots=True)
class SigningKey:
    """HMAC-SHA256: the same secret signs and verifies."""

    key_id: str
    secret: bytes
    alg = ALG_HMAC_SHA256

    def sign(self, payload: bytes | memoryview) -> bytes:
        return hmac.new(self.secret, payload, hashlib.sha256).digest()

    def verify(self, payload: bytes | memoryview, signature: bytes) -> bool:
        return hmac.compare_digest(signature, self.sign(payload))


@dataclass(frozen=True, slots=True)
class Ed25519SigningKey:
    """The aggregator's side: the 32-byte raw private key."""

    key_id: str
    private_key: bytes
    alg = ALG_ED25519

    def sign(self, payload: bytes | memoryview) -> bytes:
        return Ed25519PrivateKey.from_private_bytes(self.private_key).sign(bytes(payload))

    def public(self) -> Ed25519VerifyKey:
        raw = Ed25519PrivateKey.from_private_bytes(self.private_key).public_key().public_bytes_raw()
        return Ed25519VerifyKey(self.key_id, raw)


@dataclass(frozen=True, slots=True)
class Ed25519VerifyKey:
    """The edge's side: the 32-byte raw public key; it cannot sign."""

    key_id: str
    public_key: bytes
    alg = ALG_ED25519

    def verify(self, payload: bytes | memoryview, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, bytes(payload))
        except InvalidSignature:
            return False
        return True


Signer = SigningKey | Ed25519SigningKey
Verifier = SigningKey | Ed25519VerifyKey


def verifier_for(key: Signer) -> Verifier:
    """What checks the envelopes `key` seals: the key itself (HMAC) or its public half (Ed25519)."""
    return key.public() if isinstance(key, Ed25519SigningKey) else key


def generate_ed25519(key_id: str) -> Ed25519SigningKey:
    return Ed25519SigningKey(key_id, Ed25519PrivateKey.generate().private_bytes_raw())


def seal(payload: bytes, key: Signer) -> bytes:
    builder = flatbuffers.Builder(len(payload) + 128)
    payload_off = builder.CreateByteVector(payload)
    sig_off = builder.CreateByteVector(key.sign(payload))
    alg_off = builder.CreateString(key.alg)
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


def _envelope(data: bytes | memoryview) -> tuple[str, str, bytes, memoryview]:
    buf = memoryview(data)
    if len(buf) < 8 or not util.BufferHasIdentifier(buf, 0, SIGNED_IDENTIFIER):
        raise DecodeError("not a signed pz envelope (file identifier PZSG missing)")
    try:
        env = fb.Signed.GetRootAs(buf, 0)
        alg = (env.Alg() or b"").decode()
        key_id = (env.KeyId() or b"").decode()
        signature = bytes(_vector_view(buf, env._tab, 8))  # noqa: SLF001 - no public accessor for vector bytes
        payload = _vector_view(buf, env._tab, 10)  # noqa: SLF001
    except Exception as exc:  # a torn buffer raises struct/index errors from deep inside flatbuffers
        raise DecodeError(f"malformed envelope: {exc}") from exc
    return alg, key_id, signature, payload


def unverified_payload(data: bytes | memoryview) -> memoryview:
    """The payload without checking the signature: for inspection tools only, never for serving."""
    return _envelope(data)[3]


def open_sealed(data: bytes | memoryview, keys: Mapping[str, Verifier]) -> memoryview:
    """Verify an envelope and return its payload as a zero-copy view.

    Raises DecodeError for bytes that are not an envelope, SignatureError when it does not verify.
    """
    alg, key_id, signature, payload = _envelope(data)
    key = keys.get(key_id)
    if key is None:
        raise SignatureError(f"unknown signing key id {key_id!r}")
    if alg != key.alg:
        raise SignatureError(f"envelope signed with {alg!r}, but key {key_id!r} is {key.alg!r}")
    if not key.verify(payload, signature):
        raise SignatureError("signature does not verify")
    return payload
