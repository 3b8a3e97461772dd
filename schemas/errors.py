"""Errors raised by the contracts.

SchemaError
├── ValidationError      input from outside (browser JSON) breaks a rule; carries field and reason
├── DecodeError          bytes are not a well-formed buffer of the expected kind
└── SignatureError       an envelope's signature does not verify
"""

from __future__ import annotations


class SchemaError(Exception):
    """Base of every error raised by `schemas`."""


class ValidationError(SchemaError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class DecodeError(SchemaError):
    pass


class SignatureError(SchemaError):
    pass
