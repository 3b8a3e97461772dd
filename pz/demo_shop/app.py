"""The demo shop: the origin behind the edge in `pz up`, the demo, and the tests."""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from pz.demo_shop import catalog, pages
from pz.demo_shop.compression import Compression

_CART_COOKIE = "shop_cart"
_CART_MAX = 50


def _variant(request: Request) -> str:
    # what the edge in front decided (header-based personalization); bounded before use
    return request.headers.get("x-pz-variant", "")[:200]


def _cart(request: Request) -> list[str]:
    ids = request.cookies.get(_CART_COOKIE, "").split(",")
    known = catalog.by_id()
    return [i for i in ids if i in known][:_CART_MAX]


async def home(request: Request) -> Response:
    return HTMLResponse(
        pages.home_page([catalog.in_category(c)[0] for c in catalog.CATEGORIES], _variant(request))
    )


async def category(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in catalog.CATEGORIES:
        return HTMLResponse(pages.not_found_page(), status_code=404)
    return HTMLResponse(pages.category_page(name, catalog.in_category(name), _variant(request)))


async def product(request: Request) -> Response:
    found = catalog.by_id().get(request.path_params["id"])
    if found is None:
        return HTMLResponse(pages.not_found_page(), status_code=404)
    return HTMLResponse(pages.product_page(found, _variant(request)))


async def image(request: Request) -> Response:
    found = catalog.by_id().get(request.path_params["id"])
    if found is None:
        return Response(status_code=404)
    return Response(
        catalog.svg(found), media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"}
    )


async def cart(request: Request) -> Response:
    known = catalog.by_id()
    return HTMLResponse(pages.cart_page([known[i] for i in _cart(request)], _variant(request)))


async def cart_add(request: Request) -> Response:
    body = await request.body()
    if len(body) > 1024:
        return JSONResponse(
            {"error": "invalid_request", "field": "body", "reason": "too large"}, status_code=400
        )
    item = parse_qs(body.decode(errors="replace")).get("item", [""])[0]
    if item not in catalog.by_id():
        return JSONResponse(
            {"error": "invalid_request", "field": "item", "reason": "unknown product"}, status_code=400
        )
    response = RedirectResponse("/cart", status_code=303)
    response.set_cookie(
        _CART_COOKIE, ",".join([*_cart(request), item][-_CART_MAX:]), httponly=True, samesite="lax"
    )
    return response


async def checkout(request: Request) -> Response:
    # The order itself is not the demo's subject: the purchase beacon is (pz.js sends it on click).
    response = HTMLResponse(pages.thanks_page(_variant(request)))
    response.delete_cookie(_CART_COOKIE)
    return response


async def products_json(request: Request) -> Response:
    return JSONResponse(
        [
            {"id": p.id, "name": p.name, "category": p.category, "price_cents": p.price_cents}
            for p in catalog.products()
        ]
    )


async def echo_headers(request: Request) -> Response:
    # Lets tests and operators see exactly what the edge forwarded to the origin.
    return JSONResponse(dict(request.headers))


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def create_app() -> Starlette:
    return Starlette(
        middleware=[Middleware(Compression)],
        routes=[
            Route("/", home),
            Route("/category/{name}", category),
            Route("/product/{id}", product),
            Route("/img/{id}.svg", image),
            Route("/cart", cart),
            Route("/cart/add", cart_add, methods=["POST"]),
            Route("/cart/checkout", checkout, methods=["POST"]),
            Route("/products.json", products_json),
            Route("/shop/healthz", healthz),
            Route("/shop/headers", echo_headers),
        ],
    )
