"""`pz bench proxy`: the streaming injection engine against the usual ways, and the proxy end to end.

1. Engine: a 100 KB product-listing page with 3 placeholders, fed in 4 KB chunks, MB/s (median of
   repeats) for pz's HtmlInjector and, in the same run, lol_html (python-lolhtml, streaming too),
   selectolax and lxml (parse, replace, serialise the whole page).
2. Memory: the injector's held bytes and the peak Python allocation while a 10 MB page streams.
3. Proxy: the page served by nginx, then wrk (16 connections) against, in interleaved rounds of the
   same run: the origin alone, nginx `proxy_pass` in front of it, the edge passing the page through
   and the edge filling it. Servers on core 0, origin and load on core 1 (on one core the figures
   say less). Medians of the rounds; time to first byte from a sequential probe.
   `proxy_vs_nginx` = injecting edge / nginx proxy. Without nginx or wrk the demo shop is the
   origin and this process the load: it says so, and there is no nginx figure.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from benchmarks.common import environment, latency_summary, print_table, started_at, write_json
from benchmarks.http_load import LoadClient, build_request
from benchmarks.reference_proxy import Nginx, free_port, pin, ttfb, wrk
from edge_worker.html_inject import HtmlInjector
from pz.local_stack import LocalStack, StackOptions

CHUNK = 4096
FRAGMENTS = {
    "hero": "<p>Welcome back</p>",
    "recs": "<a href='/p/1'>one</a><a href='/p/2'>two</a>",
    "banner": "<b>Sale</b>",
}


def listing_page(target_bytes: int) -> bytes:
    head = (
        b"<!doctype html><html><head><title>Shop</title><style>.c{color:red}</style>"
        b"<script>var a = '<div data-pz-slot=\"fake\">';</script></head><body>"
        b'<div class="hero" data-pz-slot="hero"><p>default hero</p></div>'
    )
    card = (
        b'<div class="card"><a href="/product/p{n:04d}"><img alt="Product {n}" src="/img/p{n:04d}.svg">'
        b'<span class="name">Product {n}</span><span class="price">&euro;{n}.99</span></a>'
        b"<!-- card {n} --></div>\n"
    )
    cards = []
    size = len(head)
    n = 0
    while size < target_bytes - 400:
        piece = card.replace(b"{n:04d}", f"{n:04d}".encode()).replace(b"{n}", str(n).encode())
        cards.append(piece)
        size += len(piece)
        n += 1
    middle = len(cards) // 2
    cards.insert(middle, b'<div data-pz-slot="banner"><em>default banner</em></div>')
    tail = b'<div class="recs" data-pz-slot="recs"><div><div>default</div></div></div></body></html>'
    return head + b"".join(cards) + tail


def _chunks(page: bytes) -> list[bytes]:
    return [page[i : i + CHUNK] for i in range(0, len(page), CHUNK)]


def _pz(chunks: list[bytes]) -> bytes:
    fragments = {k: v.encode() for k, v in FRAGMENTS.items()}

    def resolve(name: str, attributes: Mapping[str, str]) -> bytes | None:
        return fragments.get(name)

    injector = HtmlInjector(resolve)
    out = [injector.feed(c) for c in chunks]
    out.append(injector.finish())
    return b"".join(out)


def _lolhtml(chunks: list[bytes]) -> bytes:
    import lolhtml

    out: list[bytes] = []

    class Fill:
        def element(self, e: Any) -> None:
            fragment = FRAGMENTS.get(e.get_attribute("data-pz-slot") or "")
            if fragment is not None:
                e.set_inner_content(fragment, lolhtml.ContentType.HTML)

    rewriter = lolhtml.HTMLRewriter(lambda b: out.append(bytes(b)))
    rewriter.on("[data-pz-slot]", Fill())
    for chunk in chunks:
        rewriter.write(chunk)
    rewriter.end()
    return b"".join(out)


def _selectolax(chunks: list[bytes]) -> bytes:
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(b"".join(chunks))
    for node in tree.css("[data-pz-slot]"):
        fragment = FRAGMENTS.get(node.attributes.get("data-pz-slot") or "")
        if fragment is not None:
            node.inner_html = fragment
    return (tree.html or "").encode()


def _lxml(chunks: list[bytes]) -> bytes:
    import lxml.html

    root = lxml.html.document_fromstring(b"".join(chunks))
    for node in root.xpath("//*[@data-pz-slot]"):
        fragment = FRAGMENTS.get(node.get("data-pz-slot"))
        if fragment is not None:
            for child in list(node):
                node.remove(child)
            node.text = None
            for part in lxml.html.fragments_fromstring(fragment):
                node.append(part)
    return bytes(lxml.html.tostring(root))


def _engines_mb_per_s(
    engines: dict[str, Callable[[list[bytes]], bytes]], chunks: list[bytes], size: int, repeats: int
) -> dict[str, float | None]:
    """MB/s of each engine (median of rounds). The rounds interleave the engines, so that the
    machine's drift during the measurement hits every engine alike and the ratios stay fair."""
    present = {}
    for name, fn in engines.items():
        try:
            fn(chunks)  # warm up, and find out whether the library is there
            present[name] = fn
        except ImportError:
            pass
    runs: dict[str, list[float]] = {name: [] for name in present}
    for _ in range(repeats):
        for name, fn in present.items():
            started = time.perf_counter()
            for _ in range(10):
                fn(chunks)
            runs[name].append(10 * size / (time.perf_counter() - started) / 1e6)
    return {name: round(statistics.median(runs[name]), 2) if name in runs else None for name in engines}


def _memory_for_big_page() -> dict[str, float]:
    page = listing_page(10 * 1024 * 1024)
    chunks = _chunks(page)
    injector = HtmlInjector(lambda name, attributes: b"<p>x</p>")
    tracemalloc.start()
    held = 0
    for chunk in chunks:
        injector.feed(chunk)
        held = max(held, len(injector._held))  # noqa: SLF001 - the bench looks inside on purpose
    injector.finish()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "page_mb": round(len(page) / 1e6, 1),
        "max_held_bytes": held,
        "peak_alloc_kb": round(peak / 1024, 1),
    }


async def _closed_loop(url: str, path: str, accept: str, seconds: float) -> tuple[float, list[float]]:
    client = LoadClient(url, connections=16)
    raw = build_request("GET", client.host, path, {"Accept": accept, "Accept-Encoding": "identity"})
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            result = await client.submit(raw)
            if result.status == 200:
                latencies.append((result.finished - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(16)))
    elapsed = time.perf_counter() - started
    await client.aclose()
    return len(latencies) / elapsed, latencies


def _settle_the_allocator() -> None:
    """Free one large block first, so that every engine runs with glibc's allocator in the same state,
    whatever ran before in this process. Freeing a block of this size (under glibc's 32 MB ceiling
    for it) raises the threshold for serving big allocations from fresh mmap()s; until then lexbor
    (selectolax) pays page faults on each parse: 64 MB/s in a fresh process, 100 MB/s once
    `pz bench all` had run the snapshot scenario. The baselines get their better figure."""
    block = bytearray(24 * 1024 * 1024)
    del block


def _closed_loop_in_process(url: str, path: str, accept: str, seconds: float) -> dict[str, float]:
    rps, latencies = asyncio.run(_closed_loop(url, path, accept, seconds))
    summary = latency_summary(latencies, "latency")
    return {
        "rps": rps,
        "latency_p50_ms": summary["latency_p50_ms"],
        "latency_p99_ms": summary["latency_p99_ms"],
    }


def run_proxy(quick: bool, json_path: Path | None) -> int:
    began = started_at()
    page = listing_page(100 * 1024)
    chunks = _chunks(page)
    repeats = 3 if quick else 7
    _settle_the_allocator()
    engines = _engines_mb_per_s(
        {"pz": _pz, "lolhtml": _lolhtml, "selectolax": _selectolax, "lxml": _lxml}, chunks, len(page), repeats
    )
    memory = _memory_for_big_page()
    seconds = 3.0 if quick else 5.0
    rounds = 2 if quick else 3
    reference = Nginx.available() is not None and shutil.which("wrk") is not None
    if not reference:
        print(
            "nginx or wrk is missing (scripts/install --with-bench installs them): the demo shop is the "
            "origin, this process the load, and there is no nginx figure",
            flush=True,
        )
    figures: dict[str, list[dict[str, float]]] = {"origin": [], "nginx": [], "passthrough": [], "proxy": []}
    ttfbs: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="pz-bench-proxy-") as work_dir:
        work = Path(work_dir)
        origin = Nginx(free_port(), work / "origin")
        front = Nginx(free_port(), work / "front")
        path = "/page.html" if reference else "/category/books"
        if reference:
            (work / "www").mkdir()
            (work / "www" / "page.html").write_bytes(page)
            for readable in (work, work / "www", work / "www" / "page.html"):
                readable.chmod(0o755)  # nginx's workers run as nobody
            origin.start(core=1, root=work / "www")
            front.start(core=0, upstream=f"127.0.0.1:{origin.port}")
        options = StackOptions(
            edge_port=0,
            shop_port=0,
            aggregator_port=0,
            state_dir=work / "stack",
            with_shop=not reference,
            origin_url=f"http://127.0.0.1:{origin.port}" if reference else None,
        )
        stack = LocalStack(options)
        print("starting the stack…", flush=True)
        stack.up()
        try:
            for name, process in stack.processes.items():  # the edge has core 0 to itself
                pin(process.pid, 0 if name == "edge" else 1)
            origin_url = f"http://127.0.0.1:{origin.port}" if reference else stack.shop_url
            targets = {
                "origin": (origin_url, "text/html"),
                "nginx": (f"http://127.0.0.1:{front.port}", "text/html"),
                "passthrough": (stack.edge_url, "application/xhtml+xml"),
                "proxy": (stack.edge_url, "text/html"),
            }
            if not reference:
                del targets["nginx"]
            for _ in range(rounds):
                for name, (base, accept) in targets.items():
                    if reference:
                        load = wrk(base + path, accept, seconds, 16, core=1)
                        figures[name].append(
                            {
                                "rps": load.rps,
                                "latency_p50_ms": load.latency_p50_ms,
                                "latency_p99_ms": load.latency_p99_ms,
                            }
                        )
                    else:
                        figures[name].append(_closed_loop_in_process(base, path, accept, seconds))
            for name, (base, accept) in targets.items():
                if name != "origin":
                    host, port = base.removeprefix("http://").rsplit(":", 1)
                    ttfbs[name] = ttfb(host, int(port), path, accept)
        finally:
            stack.down()
            front.stop()
            origin.stop()

    def median(name: str, key: str) -> float | None:
        values = [round_[key] for round_ in figures[name]]
        return round(statistics.median(values), 2) if values else None

    nginx_rps = median("nginx", "rps")
    proxy_rps = median("proxy", "rps")
    pass_rps = median("passthrough", "rps")
    assert proxy_rps is not None and pass_rps is not None
    metrics: dict[str, Any] = {
        "inject_mb_per_s": engines["pz"],
        "proxy_rps": proxy_rps,
        "passthrough_rps": pass_rps,
        "proxy_over_passthrough": round(proxy_rps / pass_rps, 3),
        "proxy_vs_nginx": round(proxy_rps / nginx_rps, 3) if nginx_rps else None,
        "passthrough_vs_nginx": round(pass_rps / nginx_rps, 3) if nginx_rps else None,
        **{
            f"{name}_{key}": median(name, key)
            for name in ("proxy", "passthrough")
            for key in ("latency_p50_ms", "latency_p99_ms")
        },
        **{
            f"{name}_{key}": value
            for name, found in ttfbs.items()
            for key, value in found.items()
            if key in ("ttfb_p50_ms", "ttfb_p99_ms")
        },
        "rounds_rps": {name: [round(r["rps"], 1) for r in found] for name, found in figures.items() if found},
        "memory_10mb_page": memory,
    }
    baseline = {
        "nginx_proxy_rps": nginx_rps,
        "origin_rps": median("origin", "rps"),
        "lolhtml_mb_per_s": engines["lolhtml"],
        "selectolax_mb_per_s": engines["selectolax"],
        "lxml_mb_per_s": engines["lxml"],
    }
    pz_rate = engines["pz"] or float("nan")
    result = {
        "scenario": "proxy",
        "params": {
            "page_bytes": len(page),
            "chunk_bytes": CHUNK,
            "placeholders": 3,
            "quick": quick,
            "connections": 16,
            "seconds_per_round": seconds,
            "rounds": rounds,
            "reference": "nginx origin and proxy_pass, wrk"
            if reference
            else "demo shop origin, in-process load",
            "cores": "edge and nginx proxy on core 0; origin and load on core 1",
        },
        "metrics": metrics,
        "baseline": baseline,
        "ratio": {
            "proxy_vs_nginx": metrics["proxy_vs_nginx"],
            "passthrough_vs_nginx": metrics["passthrough_vs_nginx"],
            "pz_over_lolhtml": round(pz_rate / engines["lolhtml"], 2) if engines["lolhtml"] else None,
            "pz_over_selectolax": round(pz_rate / engines["selectolax"], 2)
            if engines["selectolax"]
            else None,
            "proxy_over_passthrough": metrics["proxy_over_passthrough"],
        },
        "env": environment(),
        "started_at": began,
    }
    print_table(
        f"proxy: {len(page) // 1024} KB page, {CHUNK} B chunks",
        [
            ("pz injector MB/s", f"{engines['pz']}"),
            ("lol_html MB/s", f"{engines['lolhtml']}"),
            ("selectolax MB/s (whole page)", f"{engines['selectolax']}"),
            ("lxml MB/s (whole page)", f"{engines['lxml']}"),
            ("10 MB page: max held B / peak KB", f"{memory['max_held_bytes']} / {memory['peak_alloc_kb']}"),
            ("origin alone req/s", f"{baseline['origin_rps']}"),
            ("nginx proxy_pass req/s", f"{nginx_rps}" if nginx_rps else "n/a (no nginx)"),
            ("edge pass-through req/s", f"{pass_rps}"),
            ("edge injecting req/s", f"{proxy_rps}"),
            ("pass-through / nginx", f"{metrics['passthrough_vs_nginx']}x" if nginx_rps else "n/a"),
            ("injecting / nginx (proxy_vs_nginx)", f"{metrics['proxy_vs_nginx']}x" if nginx_rps else "n/a"),
            (
                "TTFB p50/p99 ms: nginx, pass, inject",
                " / ".join(
                    f"{ttfbs[n]['ttfb_p50_ms']}-{ttfbs[n]['ttfb_p99_ms']}"
                    for n in ("nginx", "passthrough", "proxy")
                    if n in ttfbs
                ),
            ),
        ],
    )
    write_json(json_path, result)
    return 0
