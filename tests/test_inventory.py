"""The aggregator's inventory feed: what is sold out, refused whole when it does not parse."""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregator.inventory import Inventory, parse_inventory
from pz.demo_shop.catalog import products, write_inventory


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"[", "not JSON"),
        (b'{"sold": []}', "and nothing else"),
        (b'{"out_of_stock": "p1"}', "out_of_stock: a list"),
        (b'{"out_of_stock": ["p1", 7]}', "out_of_stock[1]: an item id"),
        (b'{"out_of_stock": [""]}', "out_of_stock[0]: an item id"),
    ],
)
def test_a_bad_inventory_is_refused_with_the_field(raw: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason.replace("[", r"\[").replace("]", r"\]")):
        parse_inventory(raw)


def test_the_last_good_set_stays_when_the_file_goes_bad(tmp_path: Path) -> None:
    path = tmp_path / "inventory.json"
    inventory = Inventory(path)
    assert inventory.refresh() == frozenset()  # no file yet
    path.write_bytes(b'{"out_of_stock": ["p1", "p2"]}')
    assert inventory.refresh() == {"p1", "p2"}
    path.write_bytes(b'{"out_of_stock": ["p1", 2]} ')
    assert inventory.refresh() == {"p1", "p2"}
    path.write_bytes(b'{"out_of_stock": ["p3"]}')
    assert inventory.refresh() == {"p3"}


def test_the_demo_shop_feeds_what_it_shows_as_sold_out(tmp_path: Path) -> None:
    sold_out = parse_inventory(write_inventory(tmp_path / "inventory.json").read_bytes())
    assert sold_out == {p.id for p in products() if not p.in_stock} and 0 < len(sold_out) < len(products())
