"""`pz up --origin URL` puts the edge in front of a site that knows nothing of pz, and the edge
speaks HTTP as a proxy must: one Date and one Server, the client's Host, forwarding headers that a
client cannot forge, redirects that keep browsers on the edge, and no identity cookie on what a
shared cache may store."""

from __future__ import annotations

import http.server
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.test_cli import PZ, children_of, end_pz_up, start_pz_up

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

PAGE = (
    '<html><head><meta charset="iso-8859-1"><title>Caf\xe9 Origin</title></head><body>'
    '<div data-pz-slot="hero">the origin\'s own hero</div><p>tail of the page</p></body></html>'
).encode("latin-1")
IMAGE = bytes(range(256)) * 40


class Site(http.server.BaseHTTPRequestHandler):
    """A site that knows nothing of pz: a Latin-1 page, an image for public caches, a redirect
    naming its own address, and a page that shows what it was sent."""

    server_version = "OriginSite/1.0"

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        if self.path == "/":
            self._send(200, "text/html; charset=iso-8859-1", PAGE)
        elif self.path == "/logo.png":
            self._send(200, "image/png", IMAGE, ("Cache-Control", "public, max-age=86400"), ("ETag", '"v1"'))
        elif self.path == "/old":
            origin = f"http://127.0.0.1:{self.server.server_address[1]}"  # type: ignore[index]
            self._send(301, "text/plain", b"moved", ("Location", f"{origin}/new?x=1"))
        elif self.path == "/echo":
            seen = "\n".join(f"{name.lower()}: {value}" for name, value in self.headers.items())
            self._send(200, "text/plain", seen.encode(), ("Cache-Control", "no-store"))
        else:
            self._send(404, "text/plain", b"no")

    def _send(self, status: int, content_type: str, body: bytes, *headers: tuple[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's name
        pass


@pytest.fixture(scope="module")
def fronted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(the origin's URL, the edge's URL) of a `pz up --origin` stack."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Site)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    origin = f"http://127.0.0.1:{server.server_address[1]}"
    state: Path = tmp_path_factory.mktemp("fronted")
    proc, output = start_pz_up(state, "--origin", origin)
    try:
        assert f"origin (fronted)         {origin}/" in output
        assert not any("pz.demo_shop" in cmd for cmd in children_of(proc.pid).values())  # no demo shop
        edge = re.search(r"shop \(through the edge\)\s+(\S+)", output)
        assert edge is not None, output
        yield origin, edge.group(1).rstrip("/")
    finally:
        end_pz_up(proc)
        server.shutdown()
        server.server_close()


def test_a_latin1_page_is_filled_in_latin1_with_its_tail(fronted: tuple[str, str]) -> None:
    _, edge = fronted
    answer = httpx.get(f"{edge}/", headers={"accept": "text/html"}, timeout=10)
    assert answer.status_code == 200
    body = answer.content
    assert b"the origin's own hero" not in body  # the placeholder was filled...
    assert b'<div data-pz-slot="hero"><p class="pz-hero' in body  # ...with the default rules' hero
    assert body.endswith(b"<p>tail of the page</p></body></html>")  # nothing after it lost
    assert "<title>Caf\xe9 Origin</title>".encode("latin-1") in body  # the page's own bytes, as sent
    assert answer.headers["cache-control"] == "private, no-store"
    assert "pz_uid" in answer.cookies  # a personalised page identifies the visitor


def test_a_publicly_cacheable_image_passes_byte_for_byte_without_a_cookie(fronted: tuple[str, str]) -> None:
    _, edge = fronted
    answer = httpx.get(f"{edge}/logo.png", timeout=10)
    assert answer.status_code == 200 and answer.content == IMAGE
    assert answer.headers["cache-control"] == "public, max-age=86400" and answer.headers["etag"] == '"v1"'
    assert "set-cookie" not in answer.headers  # a shared cache must not hand one visitor's id to all


def test_a_redirect_to_the_origins_own_address_stays_on_the_edge(fronted: tuple[str, str]) -> None:
    _, edge = fronted
    answer = httpx.get(f"{edge}/old", timeout=10)
    assert answer.status_code == 301
    assert answer.headers["location"] == f"{edge}/new?x=1"


def test_one_date_one_server_and_honest_forwarding_headers(fronted: tuple[str, str]) -> None:
    _, edge = fronted
    edge_host = edge.removeprefix("http://")
    answer = httpx.get(
        f"{edge}/echo",
        headers={
            "x-forwarded-for": "6.6.6.6",
            "forwarded": "for=6.6.6.6",
            "x-forwarded-host": "evil.example",
            "x-pz-segments": "vip",
            "X_PZ_Variant": "forged",
            "connection": "keep-alive, x-hop",
            "x-hop": "for the next hop only",
        },
        timeout=10,
    )
    assert answer.status_code == 200
    assert len(answer.headers.get_list("date")) == 1
    assert answer.headers.get_list("server") == [
        "OriginSite/1.0 " + http.server.BaseHTTPRequestHandler.sys_version
    ]
    seen = dict(line.split(": ", 1) for line in answer.text.splitlines())
    assert seen["host"] == edge_host  # the client's Host, not the origin's address
    assert seen["x-forwarded-for"] == "127.0.0.1"  # the real peer: the forged entry is gone
    assert seen["x-forwarded-host"] == edge_host and seen["x-forwarded-proto"] == "http"
    assert seen["forwarded"] == f'for=127.0.0.1;host="{edge_host}";proto=http'
    assert "x-hop" not in seen  # named in Connection: for this hop only
    assert seen["x-pz-segments"] != "vip"  # the edge's own, not the client's
    assert "x-pz-variant" in seen and seen["x-pz-variant"] != "forged"
    assert not any(name.startswith("x_pz") for name in seen)


def test_methods_beyond_the_proxied_ones_are_refused_not_forwarded(fronted: tuple[str, str]) -> None:
    _, edge = fronted
    for method in ("TRACE", "CONNECT", "PROPFIND"):
        answer = httpx.request(method, f"{edge}/echo", timeout=10)
        assert answer.status_code == 405, method
    assert httpx.request("OPTIONS", f"{edge}/echo", timeout=10).status_code == 501  # the origin's own answer


def test_a_page_shown_is_an_exposure_and_an_image_is_not(fronted: tuple[str, str]) -> None:
    """The demo rules' hero test decides on every request; only a page shows it."""
    _, edge = fronted

    def exposures() -> float:
        text = httpx.get(f"{edge}/metrics", timeout=10).text
        found = re.search(r'^pz_edge_exposures_total\{experiment="hero_test"\} (\S+)$', text, re.MULTILINE)
        return float(found.group(1)) if found else 0.0

    before = exposures()
    for _ in range(3):
        assert httpx.get(f"{edge}/logo.png", timeout=10).status_code == 200
    assert httpx.get(f"{edge}/old", timeout=10).status_code == 301
    assert exposures() == before  # counted while each request was answered: nothing to wait for
    assert httpx.get(f"{edge}/", headers={"accept": "text/html"}, timeout=10).status_code == 200
    assert exposures() == before + 1


def test_pz_edge_serves_a_site_from_a_toml_file_without_the_rest_of_the_stack(tmp_path: Path) -> None:
    """`pz edge --config`: one edge in front of a site; Kafka and the aggregator unreachable, so it
    answers from what it holds (the rules' defaults) and says so on /readyz."""
    from pz.processes import free_port

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Site)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = free_port()
    config = tmp_path / "edge.toml"
    config.write_text(
        f'origin_url = "http://127.0.0.1:{server.server_address[1]}"\nedge_port = {port}\n'
        f'kafka_bootstrap = "127.0.0.1:{free_port()}"\naggregator_url = "http://127.0.0.1:{free_port()}"\n'
        f'edge_state_dir = "{tmp_path / "state"}"\n'
    )
    log = (tmp_path / "edge.log").open("w")
    proc = subprocess.Popen(
        [*PZ, "edge", "--config", str(config)], stdout=subprocess.PIPE, stderr=log, text=True
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("pz edge: settings"), first
        deadline = time.monotonic() + 30
        answer = None
        while time.monotonic() < deadline:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/logo.png", timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert answer is not None and answer.status_code == 200 and answer.content == IMAGE
        page = httpx.get(f"http://127.0.0.1:{port}/", headers={"accept": "text/html"}, timeout=5)
        assert page.status_code == 200 and page.content.endswith(b"<p>tail of the page</p></body></html>")
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert ready.status_code == 503 and ready.json()["checks"]["broker"] is False  # and says so
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        if proc.stdout is not None:
            proc.stdout.close()
        log.close()
        server.shutdown()
        server.server_close()
