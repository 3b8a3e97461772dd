"""Consent, decided at the edge for every request, before anything about the visitor is kept.

Modes (`PZ_CONSENT`):
- `off`: every visitor is identified and their events collected (consent handled elsewhere).
- `gpc` (default): a request with `Sec-GPC: 1` (Global Privacy Control) is anonymous.
- `required`: a request is anonymous unless the consent cookie (`PZ_CONSENT_COOKIE`, default
  `pz_consent`; a CMP's own cookie name works) holds a yes (`1`, `true`, `yes`, `granted`, `allow`,
  `all`), and GPC still wins.

An anonymous request gets decisions from the request alone (country, device, path, UTM; no
profile), sits in every experiment's holdout, gets no identity cookie, produces no event and logs
no exposure; an identity cookie it carries is not read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from edge_worker.identity import Identity
from edge_worker.request_parts import cookie_of

CONSENT_MODES = ("off", "gpc", "required")
_YES = frozenset({"1", "true", "yes", "granted", "allow", "all"})
ANONYMOUS_KEY = -1  # below every user key (keyed 64-bit hashes): no profile, every experiment's holdout
ANONYMOUS = Identity(raw_id="", key=ANONYMOUS_KEY, is_new=False)


@dataclass(frozen=True, slots=True)
class ConsentPolicy:
    mode: str = "gpc"
    cookie_name: str = "pz_consent"

    def allows(self, headers: Mapping[str, str]) -> bool:
        """Whether this request may be tied to a visitor (`headers` by lower-case name)."""
        if self.mode == "off":
            return True
        if headers.get("sec-gpc", "").strip() == "1":
            return False
        if self.mode == "required":
            value = cookie_of(headers, self.cookie_name)
            return value is not None and value.strip().lower() in _YES
        return True
