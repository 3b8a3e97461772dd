"""The request context rules can test: country, device, page path and UTM, referrer, local time.

Only what the rules in force use is computed. The country comes from a header that the CDN in
front sets (`CF-IPCountry` on Cloudflare, a header of your choosing on Fastly or Akamai); a client
can send it too, so trust it only behind a CDN that overwrites it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

from schemas.rules.periods import PERIOD_STARTS, period_starts

_MOBILE_UA = re.compile(r"Mobi|Android|iPhone|iPod|Opera Mini|IEMobile", re.IGNORECASE)
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_UTM = ("utm_source", "utm_medium", "utm_campaign")
MAX_PAGE_CHARS = 2048
_PAGE_NAMES = frozenset({"path", *_UTM})
_PAGE_CACHE = 4096


@dataclass(frozen=True, slots=True)
class ContextSettings:
    country_header: str = "cf-ipcountry"
    default_country: str = ""
    timezone: str = "UTC"


class ContextReader:
    def __init__(self, settings: ContextSettings) -> None:
        self._country_header = settings.country_header.lower()
        self._default_country = settings.default_country.upper()
        self._zone = ZoneInfo(settings.timezone)
        # Pages repeat and the local hour changes once an hour: both are worth remembering.
        self._pages: dict[str, tuple[str, str, str, str]] = {}
        self._clock: tuple[int, int, str] = (-1, 0, "")
        self._devices: dict[str, str] = {}  # user agents repeat too
        self._periods: tuple[int, dict[str, int]] = (-1, {})

    def _page(self, page: str) -> tuple[str, str, str, str]:
        found = self._pages.get(page)
        if found is not None:
            return found
        parts = urlsplit(page[:MAX_PAGE_CHARS])
        query = dict(parse_qsl(parts.query)) if parts.query else {}
        source, medium, campaign = (query.get(key, "")[:200] for key in _UTM)
        if len(self._pages) >= _PAGE_CACHE:
            self._pages.clear()
        self._pages[page] = (parts.path or "/", source, medium, campaign)
        return self._pages[page]

    def _device(self, user_agent: str) -> str:
        found = self._devices.get(user_agent)
        if found is None:
            found = "mobile" if _MOBILE_UA.search(user_agent[:512]) else "desktop"
            if len(self._devices) >= _PAGE_CACHE:
                self._devices.clear()
            self._devices[user_agent] = found
        return found

    def _local_time(self, now_s: float) -> tuple[int, str]:
        minute = int(now_s) // 60
        if self._clock[0] != minute:
            local = datetime.fromtimestamp(now_s, self._zone)
            self._clock = (minute, local.hour, _WEEKDAYS[local.weekday()])
        return self._clock[1], self._clock[2]

    def read(
        self, names: frozenset[str], headers: Mapping[str, str], page: str, referrer: str, now_s: float
    ) -> dict[str, object]:
        """`page`: the path (and query) of the page decided for; `referrer`: that page's referrer."""
        context: dict[str, object] = {}
        if not names:
            return context
        if "country" in names:
            country = headers.get(self._country_header, "")
            valid = len(country) == 2 and country.isascii() and country.isalpha()
            context["country"] = country.upper() if valid else self._default_country
        if "device" in names:
            mobile = headers.get("sec-ch-ua-mobile")
            if mobile in ("?1", "?0"):
                context["device"] = "mobile" if mobile == "?1" else "desktop"
            else:
                context["device"] = self._device(headers.get("user-agent", ""))
        if not names.isdisjoint(_PAGE_NAMES):
            context["path"], context["utm_source"], context["utm_medium"], context["utm_campaign"] = (
                self._page(page)
            )
        if "referrer" in names:
            context["referrer"] = (urlsplit(referrer[:MAX_PAGE_CHARS]).hostname or "") if referrer else ""
        if "hour" in names or "weekday" in names:
            context["hour"], context["weekday"] = self._local_time(now_s)
        if PERIOD_STARTS in names:
            context[PERIOD_STARTS] = self._period_starts(now_s)
        return context

    def _period_starts(self, now_s: float) -> dict[str, int]:
        minute = int(now_s) // 60  # periods begin on the minute in every time zone
        if self._periods[0] != minute:
            self._periods = (minute, period_starts(now_s, self._zone))
        return self._periods[1]
