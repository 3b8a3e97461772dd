"""The edge's origin client against origins that misbehave: each test's origin is a raw TCP server
that answers exactly as written, so every way an answer can end is exercised."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from edge_worker.origin_client import (
    MAX_BUFFERED_BYTES,
    OriginBrokeOff,
    OriginPool,
    OriginTimeouts,
    OriginUnreachable,
)
from pz.processes import free_port

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
HOST = [(b"host", b"origin.test")]


@contextlib.asynccontextmanager
async def origin_and_pool(
    handler: Handler, timeouts: OriginTimeouts | None = None
) -> AsyncIterator[OriginPool]:
    """A raw TCP origin answering with `handler`, and a pool to it; both end with the block,
    with every connection the origin accepted."""
    writers: list[asyncio.StreamWriter] = []

    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away: that is what some tests do

    server = await asyncio.start_server(tracked, "127.0.0.1", 0)
    pool = OriginPool("127.0.0.1", server.sockets[0].getsockname()[1], timeouts)
    try:
        yield pool
    finally:
        await pool.aclose()
        server.close()
        for writer in writers:
            writer.close()
        await asyncio.sleep(0)  # let the closed transports go


async def read_request(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


async def body_of(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


async def test_keep_alive_connections_are_reused_and_chunked_bodies_decoded() -> None:
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while True:
            try:
                await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            writer.write(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
            )
            await writer.drain()

    async with origin_and_pool(handler) as pool:
        for _ in range(3):
            response = await pool.request(b"GET", b"/", HOST)
            assert response.status == 200 and await body_of(response.body()) == b"hello world"
            response.release()
        assert connections == 1


async def test_a_body_cut_short_is_an_error_not_a_short_answer() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")
        await writer.drain()
        writer.close()

    async with origin_and_pool(handler) as pool:
        response = await pool.request(b"GET", b"/", HOST)
        with pytest.raises(OriginBrokeOff, match="before the body ended"):
            await body_of(response.body())
        response.close()


async def test_a_body_delimited_by_the_close_of_the_connection_ends_there() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it")
        await writer.drain()
        writer.close()

    async with origin_and_pool(handler) as pool:
        response = await pool.request(b"GET", b"/", HOST)
        assert await body_of(response.body()) == b"all of it"
        response.release()


async def test_a_pooled_connection_the_origin_closed_is_retried_once_for_a_get() -> None:
    served = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        await read_request(reader)
        served += 1
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.close()  # an origin that closes idle keep-alive connections at once

    async with origin_and_pool(handler) as pool:
        first = await pool.request(b"GET", b"/", HOST)
        assert await body_of(first.body()) == b"ok"
        first.release()
        await asyncio.sleep(0.2)  # the origin has closed it meanwhile
        second = await pool.request(b"GET", b"/", HOST)
        assert await body_of(second.body()) == b"ok"
        second.release()
        assert served == 2


async def test_interim_answers_are_skipped_and_head_has_no_body() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await answer(await read_request(reader), writer)

    async def answer(request: bytes, writer: asyncio.StreamWriter) -> None:
        if request.startswith(b"HEAD"):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        else:
            writer.write(
                b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
            )
        await writer.drain()

    async with origin_and_pool(handler) as pool:
        response = await pool.request(b"GET", b"/", HOST)
        assert response.status == 200 and response.header(b"link") == ""
        assert await body_of(response.body()) == b"abc"
        response.release()
        head = await pool.request(b"HEAD", b"/", HOST)
        assert head.status == 200 and head.header(b"content-length") == "1000"
        assert await body_of(head.body()) == b""
        head.release()


async def test_silence_and_refusal_are_errors_with_reasons() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        await writer.drain()
        await reader.read()  # silent until the client gives up and closes

    async with origin_and_pool(handler, OriginTimeouts(read_s=0.3)) as pool:
        response = await pool.request(b"GET", b"/", HOST)
        with pytest.raises(OriginBrokeOff, match="silent"):
            await body_of(response.body())
        response.close()
    nothing_there = free_port()
    with pytest.raises(OriginUnreachable, match=f"127.0.0.1:{nothing_there}"):
        await OriginPool("127.0.0.1", nothing_there).request(b"GET", b"/", HOST)


async def test_reading_pauses_while_the_client_is_slower_than_the_origin() -> None:
    total = 8 * MAX_BUFFERED_BYTES

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % total)
        for _ in range(total // 65536):
            writer.write(b"x" * 65536)
            await writer.drain()

    async with origin_and_pool(handler) as pool:
        response = await pool.request(b"GET", b"/", HOST)
        connection = response._connection  # noqa: SLF001 - the buffer is what is under test
        seen = 0
        largest_buffer = 0
        async for chunk in response.body():
            seen += len(chunk)
            await asyncio.sleep(0.01)  # a slow client
            largest_buffer = max(largest_buffer, connection.buffered)
        assert seen == total
        assert largest_buffer <= MAX_BUFFERED_BYTES + 256 * 1024  # one read past the mark at most
        response.release()


async def test_an_https_origin_is_reached_over_tls_with_its_name_checked(tmp_path: Path) -> None:
    import datetime
    import ipaddress
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "origin.test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert_file, key_file)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecret")
        await writer.drain()

    server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=server_side)
    port = server.sockets[0].getsockname()[1]
    trusting = ssl.create_default_context(cafile=str(cert_file))
    pool = OriginPool("127.0.0.1", port, tls=trusting)
    try:
        response = await pool.request(b"GET", b"/", HOST)
        assert await body_of(response.body()) == b"secret"
        response.release()
        with pytest.raises(OriginUnreachable, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            await OriginPool("127.0.0.1", port, tls=ssl.create_default_context()).request(b"GET", b"/", HOST)
    finally:
        await pool.aclose()
        server.close()
        await asyncio.sleep(0)
