"""The same-run baseline of `pz bench decide`: a bare Starlette JSON route, served the same way."""

from __future__ import annotations

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

_BODY = {"slots": {"recs": {"rule": "popular", "items": [{"id": f"p{i:04d}"} for i in range(8)]}}}


async def bare(request: Request) -> Response:
    return JSONResponse(_BODY, headers={"Cache-Control": "private, no-store"})


app = Starlette(routes=[Route("/bare", bare)])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
