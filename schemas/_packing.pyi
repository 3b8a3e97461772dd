from collections.abc import Callable, Iterable
from typing import Any

from schemas.profiles import Profile

def pack_profiles_into(
    data: bytearray,
    ends: list[int],
    item_index: dict[str, int],
    item_categories: list[str],
    segment_index: dict[str, int],
    profiles: Iterable[Profile],
    created_s: int,
    kinds: tuple[str, ...],
    /,
) -> None: ...
def unpack_profile(
    key: int,
    data: Any,
    start: int,
    end: int,
    created_s: int,
    names: list[str | None],
    categories: list[str | None],
    load_item: Callable[[int], None],
    segments: list[str],
    types: tuple[Any, ...],
    /,
) -> Profile: ...
