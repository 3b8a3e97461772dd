"""The demo shop's catalog: deterministic, 240 products in 12 categories, with generated SVG images."""

from __future__ import annotations

import hashlib
import html
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

CATEGORIES = (
    "shoes",
    "shirts",
    "jackets",
    "bags",
    "watches",
    "books",
    "lamps",
    "chairs",
    "mugs",
    "headphones",
    "plants",
    "toys",
)
_ADJECTIVES = ("Classic", "Urban", "Nordic", "Vintage", "Bright", "Quiet", "Bold", "Soft", "Swift", "Cozy")
_NOUNS = {
    "shoes": "Runner",
    "shirts": "Tee",
    "jackets": "Parka",
    "bags": "Tote",
    "watches": "Chrono",
    "books": "Novel",
    "lamps": "Lamp",
    "chairs": "Chair",
    "mugs": "Mug",
    "headphones": "Buds",
    "plants": "Fern",
    "toys": "Robot",
}
PER_CATEGORY = 20


@dataclass(frozen=True, slots=True)
class Product:
    id: str
    name: str
    category: str
    price_cents: int
    hue: int

    @property
    def price(self) -> str:
        return f"€{self.price_cents // 100}.{self.price_cents % 100:02d}"

    @property
    def in_stock(self) -> bool:
        return int(self.id[1:]) % 13 != 0  # every 13th product is sold out


@cache
def products() -> tuple[Product, ...]:
    catalog = []
    for c_index, category in enumerate(CATEGORIES):
        for n in range(PER_CATEGORY):
            number = c_index * PER_CATEGORY + n + 1
            digest = hashlib.sha256(f"pz-demo-{number}".encode()).digest()
            adjective, series = _ADJECTIVES[n % len(_ADJECTIVES)], n // len(_ADJECTIVES) + 1
            catalog.append(
                Product(
                    id=f"p{number:04d}",
                    name=f"{adjective} {_NOUNS[category]} {series}",
                    category=category,
                    price_cents=500 + int.from_bytes(digest[:2], "big") % 20_000,
                    hue=(c_index * 30 + n * 7) % 360,
                )
            )
    return tuple(catalog)


@cache
def by_id() -> dict[str, Product]:
    return {p.id: p for p in products()}


def in_category(category: str) -> list[Product]:
    return [p for p in products() if p.category == category]


def svg(product: Product) -> str:
    name = html.escape(product.name)
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="240" height="180" viewBox="0 0 240 180">'
        f'<rect width="240" height="180" fill="hsl({product.hue},60%,78%)"/>'
        f'<circle cx="120" cy="78" r="46" fill="hsl({product.hue},55%,45%)"/>'
        f'<text x="120" y="160" font-family="sans-serif" font-size="16" text-anchor="middle">{name}</text>'
        "</svg>"
    )


def write_inventory(path: Path) -> Path:
    """The demo's inventory feed for the aggregator (PZ_INVENTORY_FILE): what is sold out."""
    sold_out = [p.id for p in products() if not p.in_stock]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"out_of_stock": sold_out}))
    return path
