"""Reading `PZ_*` configuration from the environment, with the variable named in every error.

Configuration is part of the contract between the parts (DESIGN.md): both services and the
`pz` command read the same variables the same way.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from schemas.errors import SchemaError
from schemas.signing import (
    ALG_ED25519,
    ALG_HMAC_SHA256,
    Ed25519SigningKey,
    Ed25519VerifyKey,
    Signer,
    SigningKey,
    Verifier,
)


class ConfigError(SchemaError):
    """A configuration value is missing its form or out of range; names the variable."""


def env_str(env: Mapping[str, str], name: str, default: str) -> str:
    return env.get(name, default)


def env_choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env.get(name) or default
    if value not in choices:
        raise ConfigError(f"{name}={value!r}: must be one of {', '.join(choices)}")
    return value


def env_int(
    env: Mapping[str, str], name: str, default: int, *, minimum: int = 0, maximum: int = 2**62
) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: must be an integer") from None
    if not minimum <= value <= maximum:
        raise ConfigError(f"{name}={value}: must be between {minimum} and {maximum}")
    return value


def env_float(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: must be a number") from None
    if value < minimum:
        raise ConfigError(f"{name}={value}: must be at least {minimum}")
    return value


# Shared development secrets: fine on loopback, refused nowhere, but logged as a warning by the
# services so that a deployment that forgot to set them is visible.
DEV_SIGNING_SECRET = "pz-dev-signing-secret"  # noqa: S105 - documented development default
DEV_SIGNING_KEY_ID = "dev"


def _raw_key(env: Mapping[str, str], name: str) -> bytes:
    text = env.get(name, "")
    if not text:
        raise ConfigError(
            f"{name}: required with PZ_SIGNING_ALG=ed25519 (make a pair with `pz keys ed25519`)"
        )
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ConfigError(f"{name}: not base64") from None
    if len(raw) != 32:
        raise ConfigError(f"{name}: an Ed25519 key is 32 bytes, this one is {len(raw)}")
    return raw


def signer_from_env(env: Mapping[str, str]) -> Signer:
    """The aggregator's signing key: PZ_SIGNING_ALG, PZ_SIGNING_KEY_ID and the secret or private key."""
    alg = env_choice(env, "PZ_SIGNING_ALG", ALG_HMAC_SHA256, (ALG_HMAC_SHA256, ALG_ED25519))
    key_id = env_str(env, "PZ_SIGNING_KEY_ID", DEV_SIGNING_KEY_ID)
    if alg == ALG_ED25519:
        return Ed25519SigningKey(key_id, _raw_key(env, "PZ_SIGNING_PRIVATE_KEY"))
    return SigningKey(key_id, env_str(env, "PZ_SIGNING_SECRET", DEV_SIGNING_SECRET).encode())


def verifier_from_env(env: Mapping[str, str]) -> Verifier:
    """An edge's verification key: with Ed25519 only the public key (the edge cannot sign)."""
    alg = env_choice(env, "PZ_SIGNING_ALG", ALG_HMAC_SHA256, (ALG_HMAC_SHA256, ALG_ED25519))
    key_id = env_str(env, "PZ_SIGNING_KEY_ID", DEV_SIGNING_KEY_ID)
    if alg == ALG_ED25519:
        return Ed25519VerifyKey(key_id, _raw_key(env, "PZ_SIGNING_PUBLIC_KEY"))
    return SigningKey(key_id, env_str(env, "PZ_SIGNING_SECRET", DEV_SIGNING_SECRET).encode())


def is_dev_key(key: Signer | Verifier) -> bool:
    return isinstance(key, SigningKey) and key.secret == DEV_SIGNING_SECRET.encode()
