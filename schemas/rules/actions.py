"""Actions bound to their rule: what a slot shows when the rule applies."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from string import Formatter
from typing import Any

from schemas.rules.features import Facts
from schemas.rules.model import Action
from schemas.rules.recommend import NOTHING, Catalog, excluded, strategy_for


class CompiledAction:
    """An action bound to the rule (and experiment variant) it belongs to. A fragment with no fields
    and no recommendation decides the same for everyone: its answer is built once and shared, so
    callers treat decisions as read-only, except for the item dicts they own."""

    __slots__ = ("base", "static", "template", "strategy", "exclude", "limit", "_rendered")

    def __init__(self, action: Action, fragments: Mapping[str, str], base: dict[str, Any]) -> None:
        # A fragment is already a format string: `{item}`, `{category}` (validated) and `{{` `}}`.
        html = fragments.get(action.fragment, "")
        has_fields = any(field for _, field, _, _ in Formatter().parse(html))
        self.template = html if has_fields else None
        self.strategy = strategy_for(action.recommend) if action.recommend is not None else None
        self.exclude = action.exclude
        self.limit = action.limit
        self.base = dict(base)
        if action.fragment:
            self.base["fragment"] = action.fragment
            if not has_fields:
                self.base["html"] = html.format()
        if action.headers:
            self.base["headers"] = dict(action.headers)
        self.static = self.base if self.strategy is None and self.template is None else None
        self._rendered: dict[tuple[str, str], str] = {}

    def run(self, f: Facts, catalog: Catalog) -> dict[str, Any] | None:
        """The slot's decision, or None when the action cannot apply (no items, no focus item)."""
        if self.static is not None:
            return self.static
        out = dict(self.base)
        picked = None
        if self.strategy is not None:
            picked = self.strategy(
                f, catalog, self.limit, excluded(f, self.exclude, catalog) if self.exclude else NOTHING
            )
            if picked is None or not picked.items:
                return None
            out["items"] = [{"id": i} for i in picked.items]
            if picked.based_on:
                out["based_on"] = picked.based_on
            if picked.category:
                out["category"] = picked.category
        if self.template is not None:
            if picked is not None and picked.based_on:
                item, category = picked.based_on, picked.category
            else:
                focus = f.focus_item()
                if focus is None:
                    return None
                item, category = focus.item, focus.category
            out["html"] = self._render(self.template, item, category)
        return out

    def _render(self, template: str, item: str, category: str) -> str:
        """The fragment filled in (values escaped), remembered: the same items come up on every page."""
        key = (item, category)
        html = self._rendered.get(key)
        if html is None:
            if len(self._rendered) >= _RENDERED_KEPT:
                self._rendered.clear()
            html = self._rendered[key] = template.format(item=escape(item), category=escape(category))
        return html


_RENDERED_KEPT = 4096  # per action
