"""HTML of the demo shop. Every page has a banner slot, a hero slot and a recommendations strip, and
loads pz.js."""

from __future__ import annotations

from html import escape

from pz.demo_shop.catalog import CATEGORIES, Product

_STYLE = """
body{font-family:system-ui,sans-serif;margin:0;color:#222}
header{background:#1d3557;color:#fff;padding:12px 20px}
header a{color:#fff;margin-right:14px;text-decoration:none}main{padding:20px}
.grid,.pz-recs{display:flex;flex-wrap:wrap;gap:12px}.card,.pz-item{width:180px;text-decoration:none;color:#222}
.card img,.pz-item img{width:180px;height:135px;border-radius:6px}
.hero{background:#f1faee;padding:16px;border-radius:8px;margin-bottom:16px}
.pz-banner{background:#ffd166;padding:10px 16px;border-radius:6px;margin:0 0 16px}
.pz-compact{font-size:14px}.pz-bold{font-size:22px;font-weight:700}
button{background:#e63946;color:#fff;border:0;padding:10px 16px;border-radius:6px;cursor:pointer}
"""


def _variant_note(variant: str) -> str:
    if not variant:
        return "Served without the edge: no personalization headers."
    return f"Edge headers for this page: variant <code>{escape(variant)}</code>."


def _layout(title: str, body: str, body_attrs: str = "", edge_variant: str = "") -> str:
    nav = "".join(f'<a href="/category/{c}">{c.title()}</a>' for c in CATEGORIES)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)} · pz demo shop</title>"
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{_STYLE}</style></head>'
        f'<body{body_attrs}><header><a href="/"><b>pz shop</b></a>{nav}<a href="/cart">Cart</a></header>'
        '<main><div id="banner" data-pz-slot="banner"></div>'
        '<div class="hero" data-pz-slot="hero"><p>Welcome to the pz demo shop.</p></div>'
        f"{body}"
        "<h2>Recommended for you</h2>"
        '<div class="pz-recs" id="recs" data-pz-slot="recs" data-pz-item-href="/product/{id}" '
        'data-pz-item-img="/img/{id}.svg"></div>'
        f'</main><footer id="edge-variant">{_variant_note(edge_variant)}</footer>'
        '<script src="/pz/pz.js" defer></script></body></html>'
    )


def _card(p: Product) -> str:
    return (
        f'<a class="card" href="/product/{p.id}" data-pz-event="click" data-pz-item="{p.id}" '
        f'data-pz-category="{p.category}"><img alt="{escape(p.name)}" src="/img/{p.id}.svg">'
        f"<div>{escape(p.name)}</div><div>{p.price}</div></a>"
    )


def home_page(featured: list[Product], variant: str = "") -> str:
    cards = "".join(_card(p) for p in featured)
    return _layout("Home", f'<h1>Featured</h1><div class="grid">{cards}</div>', "", variant)


def category_page(category: str, items: list[Product], variant: str = "") -> str:
    cards = "".join(_card(p) for p in items)
    return _layout(
        category.title(), f'<h1>{escape(category.title())}</h1><div class="grid">{cards}</div>', "", variant
    )


def product_page(p: Product, variant: str = "") -> str:
    body = (
        f'<h1 id="product-name">{escape(p.name)}</h1><img alt="{escape(p.name)}" src="/img/{p.id}.svg">'
        f'<p>{p.price} · <a href="/category/{p.category}">{p.category}</a></p>'
        + (
            f'<form method="post" action="/cart/add"><input type="hidden" name="item" value="{p.id}">'
            f'<button type="submit" data-pz-event="add_to_cart" data-pz-item="{p.id}" '
            f'data-pz-category="{p.category}" '
            f'data-pz-value="{p.price_cents / 100:.2f}">Add to cart</button></form>'
            if p.in_stock
            else '<p id="sold-out"><b>Sold out</b></p>'
        )
    )
    return _layout(p.name, body, f' data-pz-item="{p.id}" data-pz-category="{p.category}"', variant)


def cart_page(items: list[Product], variant: str = "") -> str:
    rows = "".join(f"<li>{escape(p.name)} — {p.price}</li>" for p in items) or "<li>Your cart is empty.</li>"
    checkout = ""
    if items:
        total = sum(p.price_cents for p in items) / 100
        last = items[-1]
        checkout = (
            '<form method="post" action="/cart/checkout"><button type="submit" id="checkout" '
            f'data-pz-event="purchase" data-pz-item="{last.id}" data-pz-category="{last.category}" '
            f'data-pz-value="{total:.2f}">Buy now</button></form>'
        )
    return _layout("Cart", f'<h1>Cart</h1><ul id="cart">{rows}</ul>{checkout}', "", variant)


def thanks_page(variant: str = "") -> str:
    return _layout("Thank you", "<h1>Thank you for your order!</h1>", "", variant)


def not_found_page() -> str:
    return _layout("Not found", "<h1>Not found</h1>")
