"""What a reverse proxy must say and not say, both ways (RFC 9110 §7.6, RFC 7239).

To the origin: the client's headers minus hop-by-hop ones, those the client's `Connection` header
names, and personalization headers in any spelling (`X-PZ-*`, `X_PZ_*`: servers that map headers to
variables read them as one); the client's `Host` (or `PZ_ORIGIN_HOST`), and `X-Forwarded-For`,
`-Host`, `-Proto` and `Forwarded` saying who asked. What a client sends in those is trusted only
from a peer in `PZ_TRUSTED_PROXIES` (the CDN in front); anyone else's is replaced, so an origin that
reads the first entry reads the real peer.

From the origin: its headers minus hop-by-hop ones and those its `Connection` names; one `Date` and
one `Server` (the origin's, or `PZ_SERVER_HEADER`); an absolute `Location`, `Content-Location` or
`Refresh` URL naming the origin's own address rewritten to the edge's public one, so browsers stay
on the edge.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# Set by the edge itself on the way to the origin: what a client sends is replaced or extended.
_FORWARDING = frozenset({"host", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "forwarded"})
_URL_HEADERS = frozenset({"location", "content-location"})
_REFRESH_URL = re.compile(r"(?i)(url\s*=\s*['\"]?)([^'\"\s;]+)")
PZ_HEADER_PREFIX = "x-pz-"


def spelled(name: str) -> str:
    """One spelling of a header name: `X_PZ_SEGMENTS` is `x-pz-segments` to many origins."""
    return name.lower().replace("_", "-")


def parse_trusted_proxies(value: str) -> tuple[IpNetwork, ...]:
    """`10.0.0.0/8, 2001:db8::/32, 127.0.0.1`; ValueError names the entry that is not a network."""
    networks = []
    for entry in value.split(","):
        entry = entry.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or network (CIDR)") from None
    return tuple(networks)


@dataclass(frozen=True, slots=True)
class ClientSide:
    """Who asked, as the origin is told: the peer's address and the request's public scheme and host."""

    peer: str
    proto: str
    host: str
    trusted_peer: bool

    @property
    def public_base(self) -> str:
        return f"{self.proto}://{self.host}"


@dataclass(frozen=True, slots=True)
class ForwardingPolicy:
    origin_url: str
    origin_host: str = ""  # "": the client's Host goes to the origin
    public_url: str = ""  # "": the edge's public address is the one the client used
    trusted_proxies: tuple[IpNetwork, ...] = ()
    server_header: str = ""  # "": the origin's Server header passes

    def _origin_base(self) -> str:
        parts = urlsplit(self.origin_url)
        return f"{parts.scheme}://{parts.netloc}".lower()

    def client_side(self, headers: Mapping[str, str], peer: str, scheme: str) -> ClientSide:
        """`headers`: the request's, by lower-case name."""
        trusted = self._trusted(peer)
        proto = scheme
        host = headers.get("host", "")
        if trusted:
            proto = headers.get("x-forwarded-proto", "").split(",")[0].strip().lower() or proto
            host = headers.get("x-forwarded-host", "").split(",")[0].strip() or host
        if proto not in ("http", "https"):
            proto = scheme
        return ClientSide(peer, proto, host or urlsplit(self.origin_url).netloc, trusted)

    def _trusted(self, peer: str) -> bool:
        if not self.trusted_proxies or not peer:
            return False
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self.trusted_proxies)

    def request_headers(
        self, raw: list[tuple[bytes, bytes]], client: ClientSide, strip: frozenset[str]
    ) -> list[tuple[str, str]]:
        """The headers to send the origin for a request with these raw ASGI headers. `strip`: more
        names (spelled) the client may not send, such as the ones the edge adds."""
        named: set[str] = set()
        for key, value in raw:
            if key.lower() == b"connection":
                named.update(spelled(token.strip()) for token in value.decode("latin-1").split(","))
        forwarded: list[tuple[str, str]] = []
        seen: dict[str, list[str]] = {}
        for key, value in raw:
            name = key.decode("latin-1")
            lower = spelled(name)
            if lower in _FORWARDING:
                seen.setdefault(lower, []).append(value.decode("latin-1"))
                continue
            if (
                lower in _HOP_BY_HOP
                or lower in named
                or lower.startswith(PZ_HEADER_PREFIX)
                or lower in strip
                or lower == "content-length"
            ):
                continue
            forwarded.append((name, value.decode("latin-1")))
        host = self.origin_host or (seen.get("host") or [client.host])[0]
        forwarded.append(("host", host))
        chain = ", ".join(seen.get("x-forwarded-for", [])) if client.trusted_peer else ""
        forwarded.append(("x-forwarded-for", f"{chain}, {client.peer}" if chain else client.peer))
        forwarded.append(("x-forwarded-host", client.host))
        forwarded.append(("x-forwarded-proto", client.proto))
        node = f'"[{client.peer}]"' if ":" in client.peer else client.peer
        ours = f'for={node};host="{client.host}";proto={client.proto}'
        earlier = ", ".join(seen.get("forwarded", [])) if client.trusted_peer else ""
        forwarded.append(("forwarded", f"{earlier}, {ours}" if earlier else ours))
        return forwarded

    def response_headers(
        self, raw: list[tuple[bytes, bytes]], client: ClientSide
    ) -> list[tuple[bytes, bytes]]:
        named: set[bytes] = set()
        for key, value in raw:
            if key.lower() == b"connection":
                named.update(token.strip().lower().encode() for token in value.decode("latin-1").split(","))
        origin_base = self._origin_base()
        public = (self.public_url or client.public_base).rstrip("/")
        out: list[tuple[bytes, bytes]] = []
        has_date = False
        for key, value in raw:
            name = key.lower()
            text = name.decode("latin-1")
            if text in _HOP_BY_HOP or name in named:
                continue
            if name == b"date":
                if has_date:
                    continue  # one Date
                has_date = True
            elif name == b"server" and self.server_header:
                continue
            elif text in _URL_HEADERS:
                value = _rebased(value.decode("latin-1"), origin_base, public).encode("latin-1")
            elif name == b"refresh":
                decoded = value.decode("latin-1")
                value = _REFRESH_URL.sub(
                    lambda m: m.group(1) + _rebased(m.group(2), origin_base, public), decoded
                ).encode("latin-1")
            out.append((name, value))
        if self.server_header:
            out.append((b"server", self.server_header.encode("latin-1")))
        return out


def _rebased(url: str, origin_base: str, public_base: str) -> str:
    """`url` on the public address if it names the origin's own (scheme, host and port)."""
    if url.lower().startswith(origin_base):
        rest = url[len(origin_base) :]
        if not rest or rest[0] in "/?#":
            return public_base + rest
    return url


def shared_cacheable(headers: list[tuple[bytes, bytes]], status: int) -> bool:
    """Whether a shared cache may store this response (RFC 9111 §3): then it must not carry one
    visitor's identity cookie. Responses marked private or no-store are never stored; the rest are
    when they say how long (public, max-age, s-maxage, Expires) or carry a validator on a status
    that is cacheable by default."""
    cache_control = b",".join(value for key, value in headers if key == b"cache-control").lower()
    if b"private" in cache_control or b"no-store" in cache_control:
        return False
    if any(word in cache_control for word in (b"public", b"max-age", b"s-maxage")):
        return True
    names = {key for key, _ in headers}
    if b"expires" in names:
        return True
    heuristic = status in (200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501)
    return heuristic and (b"etag" in names or b"last-modified" in names)
