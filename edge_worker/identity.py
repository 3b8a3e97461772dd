"""First-party user identity: a random id in a cookie signed by the edge, and its 64-bit key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any

from lru import LRU

from schemas.user_key import user_key

_SIG_BYTES = 16


@dataclass(frozen=True, slots=True)
class Identity:
    raw_id: str
    key: int
    is_new: bool  # the cookie was missing or did not verify: the response must set it


@dataclass(frozen=True, slots=True)
class CookiePolicy:
    """How the identity cookie is set: first-party, SameSite=Lax, path /."""

    name: str
    max_age_s: int
    httponly: bool
    secure: str  # "auto": when the request came over https; "always"; "never"

    def set_cookie(self, value: str, https: bool) -> bytes:
        """A Set-Cookie header value (the attributes Starlette's Response.set_cookie writes)."""
        cookie: SimpleCookie = SimpleCookie()
        cookie[self.name] = value
        morsel = cookie[self.name]
        morsel["max-age"] = self.max_age_s
        morsel["path"] = "/"
        morsel["samesite"] = "lax"
        if self.httponly:
            morsel["httponly"] = True
        if self.secure == "always" or (self.secure == "auto" and https):
            morsel["secure"] = True
        return cookie.output(header="").strip().encode("latin-1")


class CookieSigner:
    def __init__(self, secret: bytes, cache_size: int = 100_000) -> None:
        self._secret = secret
        # Returning visitors present the same cookie on every request: verified once, then looked up.
        self._verified: LRU[str, Identity] = LRU(cache_size)

    def _sign(self, raw_id: str) -> str:
        mac = hmac.new(self._secret, raw_id.encode(), hashlib.sha256).digest()[:_SIG_BYTES]
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def cookie_value(self, raw_id: str) -> str:
        return f"{raw_id}.{self._sign(raw_id)}"

    def verify(self, value: str | None) -> str | None:
        """The raw id of a well-signed cookie value, else None (tampered, truncated, foreign)."""
        if not value or len(value) > 128:
            return None
        raw_id, _, signature = value.rpartition(".")
        if not raw_id or not hmac.compare_digest(signature, self._sign(raw_id)):
            return None
        return raw_id

    def identify(self, cookie_value: str | None) -> Identity:
        if cookie_value is not None:
            known = self._verified.get(cookie_value)
            if known is not None:
                return known
            raw_id = self.verify(cookie_value)
            if raw_id is not None:  # only cookies that verify are remembered: forgeries cannot fill the cache
                identity = Identity(raw_id=raw_id, key=user_key(raw_id, self._secret), is_new=False)
                self._verified[cookie_value] = identity
                return identity
        raw_id = secrets.token_urlsafe(16)
        # The user key is keyed with the same secret: ids cannot be mapped to keys from outside.
        return Identity(raw_id=raw_id, key=user_key(raw_id, self._secret), is_new=True)


def identity_cookie(
    identity: Identity,
    scope: Mapping[str, Any],
    headers: Mapping[str, str],
    policy: CookiePolicy,
    signer: CookieSigner,
) -> bytes | None:
    """The Set-Cookie value that gives a new visitor their identity, or None for a known (or an
    anonymous) one: the one place the identity cookie is made."""
    if not identity.is_new:
        return None
    https = scope.get("scheme") == "https" or headers.get("x-forwarded-proto") == "https"
    return policy.set_cookie(signer.cookie_value(identity.raw_id), https)
