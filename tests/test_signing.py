"""Both signature algorithms, and the configuration that picks them."""

from __future__ import annotations

import base64

import pytest

from schemas import SignatureError, SigningKey, open_sealed, seal
from schemas.settings import ConfigError, signer_from_env, verifier_from_env
from schemas.signing import Ed25519SigningKey, Ed25519VerifyKey, generate_ed25519, verifier_for


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_ed25519_seals_with_the_private_key_and_edges_verify_with_the_public_one() -> None:
    private = generate_ed25519("k1")
    public = verifier_for(private)
    assert isinstance(public, Ed25519VerifyKey) and not hasattr(public, "sign")
    assert bytes(open_sealed(seal(b"payload", private), {"k1": public})) == b"payload"


def test_another_private_key_does_not_verify() -> None:
    with pytest.raises(SignatureError, match="does not verify"):
        open_sealed(seal(b"payload", generate_ed25519("k1")), {"k1": verifier_for(generate_ed25519("k1"))})


def test_an_envelope_cannot_pick_a_weaker_algorithm_than_the_key() -> None:
    public = verifier_for(generate_ed25519("k1"))
    forged = seal(b"payload", SigningKey("k1", public.public_key))  # type: ignore[union-attr]
    with pytest.raises(SignatureError, match="signed with 'hmac-sha256'"):
        open_sealed(forged, {"k1": public})
    with pytest.raises(SignatureError, match="signed with 'ed25519'"):
        open_sealed(seal(b"payload", generate_ed25519("k1")), {"k1": SigningKey("k1", b"secret")})


def test_configuration_gives_the_aggregator_the_private_key_and_the_edge_the_public_one() -> None:
    private = generate_ed25519("prod")
    public = verifier_for(private)
    assert isinstance(public, Ed25519VerifyKey)
    env = {
        "PZ_SIGNING_ALG": "ed25519",
        "PZ_SIGNING_KEY_ID": "prod",
        "PZ_SIGNING_PRIVATE_KEY": b64(private.private_key),
        "PZ_SIGNING_PUBLIC_KEY": b64(public.public_key),
    }
    signer = signer_from_env(env)
    verifier = verifier_from_env({k: v for k, v in env.items() if k != "PZ_SIGNING_PRIVATE_KEY"})
    assert isinstance(signer, Ed25519SigningKey) and isinstance(verifier, Ed25519VerifyKey)
    assert bytes(open_sealed(seal(b"x", signer), {"prod": verifier})) == b"x"
    assert isinstance(signer_from_env({}), SigningKey)  # HMAC by default


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PZ_SIGNING_ALG": "rot13"}, "PZ_SIGNING_ALG"),
        ({"PZ_SIGNING_ALG": "ed25519"}, "PZ_SIGNING_PUBLIC_KEY: required"),
        ({"PZ_SIGNING_ALG": "ed25519", "PZ_SIGNING_PUBLIC_KEY": "!!!"}, "PZ_SIGNING_PUBLIC_KEY"),
        ({"PZ_SIGNING_ALG": "ed25519", "PZ_SIGNING_PUBLIC_KEY": b64(b"short")}, "32 bytes"),
    ],
)
def test_bad_signing_configuration_names_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        verifier_from_env(env)
