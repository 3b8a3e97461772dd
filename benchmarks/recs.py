"""`pz bench recs`: offline quality of the item model on a clickstream with a known structure.

The generated shop has categories of items with skewed popularity, and each item has a complement in
another category (shoes -> socks). Users have one or two favourite categories; a session starts in
one, then moves to the current item's complement, stays in the category, or wanders to anything
popular. Every user's last session is held out; the model learns from the others through the same
code the aggregator runs (`add_events` for the session state, `add_user_events`, `top_similar` at the
production settings). Each held-out step asks: given the session so far, is the next item in the
top 10? Same run, same sessions: overall popularity (the required baseline), popularity in the
current item's category, and the item model as edges serve it (neighbours, then the category's
popular items, then overall popular ones). Reports hit-rate@10 and NDCG@10 and the ratios.
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from aggregator.item_history import UserHistory, WindowSettings, add_events
from aggregator.item_model import CoOccurrence, ItemModelSettings, add_user_events, next_items, top_similar
from benchmarks.common import environment, print_table, started_at, write_json
from schemas.events import Event
from schemas.rules.recommend import fill

K = 10
_T0_S = 1_800_000_000


@dataclass(frozen=True, slots=True)
class Shop:
    categories: int
    per_category: int
    rng_seed: int = 11

    def item(self, category: int, rank: int) -> str:
        return f"c{category:02d}-i{rank:03d}"

    def category_of(self, item: str) -> str:
        return item.split("-", 1)[0]

    def complement(self, item: str) -> str:
        """A fixed partner in another category: what people buy with it."""
        category, rank = int(item[1:3]), int(item[-3:])
        return self.item((category * 7 + rank + 1) % self.categories, (rank * 13 + 5) % self.per_category)


def _zipf_rank(rng: random.Random, n: int) -> int:
    return min(n - 1, int(n ** rng.random()) - 1)  # log-uniform: a few items take most of the views


def generate(shop: Shop, users: int, seed: int) -> list[list[list[tuple[str, str, int]]]]:
    """Per user, their sessions in time order; a session is [(kind, item, t_s)]."""
    rng = random.Random(seed)  # noqa: S311 - reproducible data, not a secret
    out = []
    for _ in range(users):
        favourites = rng.sample(range(shop.categories), rng.choice((1, 2)))
        t = _T0_S + rng.randrange(86_400)
        sessions = []
        for _ in range(rng.randint(3, 7)):
            category = rng.choice(favourites)
            item = shop.item(category, _zipf_rank(rng, shop.per_category))
            session = [("page_view", item, t)]
            for _ in range(rng.randint(2, 8)):
                t += rng.randint(15, 180)
                step = rng.random()
                if step < 0.3:
                    item = shop.complement(item)
                elif step < 0.85:
                    category = int(shop.category_of(item)[1:])
                    item = shop.item(category, _zipf_rank(rng, shop.per_category))
                else:
                    item = shop.item(rng.randrange(shop.categories), _zipf_rank(rng, shop.per_category))
                kind = "add_to_cart" if rng.random() < 0.1 else "page_view"
                session.append((kind, item, t))
            sessions.append(session)
            t += rng.randint(7200, 3 * 86_400)  # the next visit: well past the session gap
        out.append(sessions)
    return out


def train(
    histories: list[list[list[tuple[str, str, int]]]], settings: ItemModelSettings
) -> tuple[dict[str, list[str]], Counter[str]]:
    together = CoOccurrence.empty()
    views: Counter[str] = Counter()
    windows = WindowSettings()
    for user, sessions in enumerate(histories):
        state = UserHistory()
        for session in sessions:
            events = [
                Event(kind, user, t * 1000, t * 1000, item=item, category="c") for kind, item, t in session
            ]
            add_user_events(together, state, events, settings)  # one batch per session, as the pipeline would
            add_events(state, events, windows)
            views.update(item for _, item, _ in session)
    return top_similar(together.pairs, together.items, settings.top_k), views


def _score(
    held_out: list[list[tuple[str, str, int]]], recommend: Callable[[list[str]], Sequence[str]]
) -> tuple[float, float, int]:
    hits = 0
    gain = 0.0
    asked = 0
    for session in held_out:
        items = [item for _, item, _ in session]
        for k in range(1, len(items)):
            if items[k] in items[:k]:
                continue  # a revisit: not a recommendation's job
            asked += 1
            shown = list(recommend(items[:k]))[:K]
            if items[k] in shown:
                hits += 1
                gain += 1 / math.log2(shown.index(items[k]) + 2)
    return hits / asked, gain / asked, asked


def run_recs(users: int = 20_000, quick: bool = False, json_path: Path | None = None) -> int:
    began = started_at()
    if quick:
        users = min(users, 2_000)
    shop = Shop(categories=30, per_category=80)
    settings = ItemModelSettings()
    histories = generate(shop, users, seed=3)
    started = time.perf_counter()
    similar, views = train([sessions[:-1] for sessions in histories], settings)
    train_s = time.perf_counter() - started
    held_out = [sessions[-1] for sessions in histories]

    popular = [item for item, _ in views.most_common()]
    by_category: dict[str, list[str]] = defaultdict(list)
    for item in popular:
        by_category[shop.category_of(item)].append(item)

    # Lists filled as the edge fills them (schemas.rules.recommend.fill): in order, no repeats,
    # nothing the session already showed.
    def by_popularity(session: list[str]) -> list[str]:
        return fill(K, frozenset(session), "", popular[: K + len(session)])

    def by_category_popularity(session: list[str]) -> list[str]:
        category = by_category[shop.category_of(session[-1])]
        return fill(K, frozenset(session), "", category, popular[: K + len(session)])

    def by_item_model(session: list[str]) -> list[str]:
        neighbours = next_items(similar, session, K)
        category = by_category[shop.category_of(session[-1])]
        return fill(K, frozenset(session), "", neighbours, category, popular[: 2 * K])

    scored = {
        name: _score(held_out, fn)
        for name, fn in (
            ("popularity", by_popularity),
            ("category_popularity", by_category_popularity),
            ("item_model", by_item_model),
        )
    }
    asked = scored["item_model"][2]
    metrics = {f"{name}_hit_rate_at_10": round(s[0], 4) for name, s in scored.items()}
    metrics |= {f"{name}_ndcg_at_10": round(s[1], 4) for name, s in scored.items()}
    metrics |= {"predictions": asked, "train_s": round(train_s, 2), "items_with_neighbours": len(similar)}
    base_hit, base_ndcg = scored["popularity"][0], scored["popularity"][1]
    ratio = {
        "hit_rate_vs_popularity": round(scored["item_model"][0] / base_hit, 2),
        "ndcg_vs_popularity": round(scored["item_model"][1] / base_ndcg, 2),
        "hit_rate_vs_category_popularity": round(
            scored["item_model"][0] / scored["category_popularity"][0], 2
        ),
    }
    result = {
        "scenario": "recs",
        "params": {
            "users": users,
            "quick": quick,
            "items": shop.categories * shop.per_category,
            "categories": shop.categories,
            "held_out": "each user's last session; every step whose next item is new to the session",
            "session_gap_s": settings.session_gap_s,
            "neighbours_per_item": settings.top_k,
        },
        "metrics": metrics,
        "baseline": {
            "popularity_hit_rate_at_10": round(base_hit, 4),
            "popularity_ndcg_at_10": round(base_ndcg, 4),
        },
        "ratio": ratio,
        "env": environment(),
        "started_at": began,
    }
    print_table(
        f"recs: next-item prediction, {users} users, {asked} predictions",
        [
            *((f"{name} hit-rate@10", f"{s[0]:.3f}") for name, s in scored.items()),
            *((f"{name} NDCG@10", f"{s[1]:.3f}") for name, s in scored.items()),
            ("item model / popularity (hit-rate)", f"{ratio['hit_rate_vs_popularity']:.2f}x"),
            ("item model / popularity (NDCG)", f"{ratio['ndcg_vs_popularity']:.2f}x"),
            ("train s (aggregator code)", f"{train_s:.2f}"),
        ],
    )
    write_json(json_path, result)
    return 0
