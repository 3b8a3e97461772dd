"""Attribution tokens: which slot, rule and variant showed an item, signed by the edge.

Every recommended item in a decision carries one; `pz.js` sends it back with a click or an
add-to-cart on that item, and the edge credits the slot, rule and variant only if the token verifies
and names the same item. A browser cannot claim credit for a slot that never showed the item.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

_TAG_BYTES = 12
_ISSUED_LIMIT = 100_000
MAX_TOKEN_CHARS = 512


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Credit:
    slot: str
    rule: str
    variant: str
    item: str


class AttributionSigner:
    def __init__(self, secret: bytes) -> None:
        self._key = hashlib.sha256(b"pz-attribution\0" + secret).digest()  # not the cookie key itself
        self._issued: dict[tuple[str, str, str, str], str] = {}

    def _tag(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()[:_TAG_BYTES]

    def token(self, slot: str, rule: str, variant: str, item: str) -> str:
        # A token names no user, so the same item in the same slot gets the same one for everyone:
        # remembered instead of signed again on every page.
        key = (slot, rule, variant, item)
        found = self._issued.get(key)
        if found is None:
            body = "\x1f".join(key).encode()
            found = f"{_b64(body)}.{_b64(self._tag(body))}"
            if len(self._issued) >= _ISSUED_LIMIT:
                self._issued.clear()
            self._issued[key] = found
        return found

    def verify(self, token: str) -> Credit | None:
        if len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
            return None
        body_text, _, tag_text = token.partition(".")
        try:
            body, tag = _unb64(body_text), _unb64(tag_text)
        except ValueError:
            return None
        if not hmac.compare_digest(tag, self._tag(body)):
            return None
        parts = body.decode(errors="replace").split("\x1f")
        if len(parts) != 4:
            return None
        return Credit(*parts)


def add_tokens(decision: dict[str, Any], signer: AttributionSigner, variant: str) -> None:
    """Give every recommended item in a decision its attribution token (in place)."""
    for slot, chosen in decision.items():
        for item in chosen.get("items", ()):
            # The slot's own experiment variant when it has one, else the page's rules.
            slot_variant = chosen.get("variant") or variant
            item["token"] = signer.token(slot, chosen.get("rule", ""), slot_variant, item["id"])
