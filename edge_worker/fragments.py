"""Server-side rendering of a slot's decision into the HTML that replaces its placeholder.

Item markup mirrors what pz.js renders, so a page looks the same whether the edge filled it while
proxying or the browser refreshed it later. Every value from a decision or an item id is escaped;
the href and img templates come from the origin's own markup (`data-pz-item-href`,
`data-pz-item-img`, with `{id}` standing for the URL-encoded item id).
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any
from urllib.parse import quote


def _fill(template: str, item_id: str) -> str:
    return template.replace("{id}", quote(item_id, safe=""))


def render_slot(decision: Mapping[str, Any] | None, attributes: Mapping[str, str]) -> bytes | None:
    """The fragment for one slot, or None to leave the placeholder's own content in place."""
    if decision is None:
        return None
    if "html" in decision:
        return str(decision["html"]).encode()
    items = decision.get("items") or []
    if not items:
        return None
    href = attributes.get("data-pz-item-href", "#")
    img = attributes.get("data-pz-item-img")
    parts = []
    for item in items:
        item_id = str(item["id"])
        inner = (
            f'<img alt="{escape(item_id)}" src="{escape(_fill(img, item_id))}">' if img else escape(item_id)
        )
        parts.append(
            f'<a class="pz-item" data-pz-event="click" data-pz-item="{escape(item_id)}" '
            f'data-pz-token="{escape(str(item.get("token", "")))}" '
            f'href="{escape(_fill(href, item_id))}">{inner}</a>'
        )
    return "".join(parts).encode()
