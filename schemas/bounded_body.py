"""Reading a request body with a hard size limit, declared or not (both services' HTTP entry points).

Typed against the two things it uses, so that this package needs no web framework."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Protocol


class StreamingRequest(Protocol):
    @property
    def headers(self) -> Mapping[str, str]: ...

    def stream(self) -> AsyncIterator[bytes]: ...


async def read_bounded(request: StreamingRequest, limit: int) -> bytes | None:
    """The whole body, or None as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
