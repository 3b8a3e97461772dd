from typing import Any

from schemas.events import Event

def decode_event(data: bytes | memoryview, types: tuple[Any, Any, Any, dict[int, str]], /) -> Event: ...
