"""Reading `PZ_*` configuration from the environment, with the variable named in every error.

Configuration is part of the contract between the parts (DESIGN.md): both services and the
`pz` command read the same variables the same way.
"""

from __future__ import annotations

from collections.abc import Mapping

from schemas.errors import SchemaError


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
