"""A lean HTTP/1.1 keep-alive client for load generation.

httpx's connection pool does work quadratic in the number of queued requests, which made the load
generator, not the server, the bottleneck at ~1 000 requests/s. This client keeps a fixed set of
persistent connections, each serving one request at a time from a shared queue; requests wait in
the queue, so latency counted from the scheduled time includes any queueing (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class HttpResult:
    status: int
    body: bytes
    finished: float  # perf_counter when the whole response was read


class _Connection:
    def __init__(self, host: str, port: int) -> None:
        self._host, self._port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(self, raw: bytes) -> HttpResult:
        if self._writer is None or self._writer.is_closing():
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        assert self._reader is not None
        self._writer.write(raw)
        head = await self._reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = 0
        close = chunked = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            lowered = name.strip().lower()
            if lowered == b"content-length":
                length = int(value)
            elif lowered == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif lowered == b"connection" and value.strip().lower() == b"close":
                close = True
        if chunked:
            body = await self._read_chunked()
        else:
            body = await self._reader.readexactly(length) if length else b""
        if close:
            self.close()
        return HttpResult(status, body, time.perf_counter())

    async def _read_chunked(self) -> bytes:
        assert self._reader is not None
        parts: list[bytes] = []
        while True:
            size = int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self._reader.readuntil(b"\r\n")  # no trailers from our servers: the final CRLF
                return b"".join(parts)
            parts.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def build_request(method: str, host: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


Job = tuple[bytes, "asyncio.Future[HttpResult]"]


class LoadClient:
    def __init__(self, base_url: str, connections: int) -> None:
        parts = urlsplit(base_url)
        self.host = parts.netloc
        self._queue: asyncio.Queue[Job] = asyncio.Queue()
        self._workers = [
            asyncio.create_task(self._serve(_Connection(parts.hostname or "127.0.0.1", parts.port or 80)))
            for _ in range(connections)
        ]

    async def _serve(self, connection: _Connection) -> None:
        try:
            while True:
                raw, future = await self._queue.get()
                try:
                    result = await connection.request(raw)
                except (
                    OSError,
                    asyncio.IncompleteReadError,
                    asyncio.LimitOverrunError,
                    ValueError,
                    IndexError,
                ) as exc:
                    connection.close()
                    if not future.done():
                        future.set_exception(exc)
                    continue
                if not future.done():
                    future.set_result(result)
        finally:
            connection.close()

    def submit(self, raw: bytes) -> Awaitable[HttpResult]:
        future: asyncio.Future[HttpResult] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((raw, future))
        return future

    async def aclose(self) -> None:
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)


async def open_loop(
    rate: float, count: int, fire: Callable[[int, float], Coroutine[Any, Any, None]]
) -> float:
    """Call `fire(i, scheduled)` for i in range(count) at `rate` per second; returns the achieved rate."""
    tasks: set[asyncio.Task[None]] = set()
    start = time.perf_counter() + 0.05
    for i in range(count):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(fire(i, scheduled))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    elapsed = time.perf_counter() - start
    await asyncio.gather(*list(tasks))
    return count / elapsed if elapsed > 0 else float("nan")
