"""Run an edge worker: `python -m edge_worker` (configuration from PZ_* variables).

`PZ_SERVER=granian` serves it with granian instead of uvicorn: the same ASGI application, more
requests per second per core (DESIGN.md, Serving). Granian imports the application itself, in its
worker process, through `app_from_env`.
"""

from __future__ import annotations

import uvicorn
from starlette.applications import Starlette

from edge_worker.app import create_app
from edge_worker.config import EdgeConfig
from schemas.logs import configure_json_logging


def app_from_env() -> Starlette:
    configure_json_logging("edge")
    return create_app(EdgeConfig.from_env())


def main() -> None:
    configure_json_logging("edge")
    config = EdgeConfig.from_env()
    if config.server == "granian":
        from granian import Granian
        from granian.constants import Interfaces

        Granian(
            "edge_worker.__main__:app_from_env",
            factory=True,
            interface=Interfaces.ASGI,
            address=config.host,
            port=config.port,
            log_access=False,
        ).serve()
        return
    uvicorn.run(
        create_app(config),
        host=config.host,
        port=config.port,
        log_config=None,
        access_log=False,
        server_header=False,  # a proxied response keeps the origin's Server and Date, one of each
        date_header=False,  # RequestMetrics dates the rest
        proxy_headers=False,  # X-Forwarded-* count from PZ_TRUSTED_PROXIES only (edge_worker.forwarding)
    )


if __name__ == "__main__":
    main()
