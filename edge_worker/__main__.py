"""Run an edge worker: `python -m edge_worker` (configuration from PZ_* variables)."""

from __future__ import annotations

import uvicorn

from edge_worker.app import create_app
from edge_worker.config import EdgeConfig
from schemas.logs import configure_json_logging


def main() -> None:
    configure_json_logging("edge")
    config = EdgeConfig.from_env()
    uvicorn.run(create_app(config), host=config.host, port=config.port, log_config=None, access_log=False)


if __name__ == "__main__":
    main()
