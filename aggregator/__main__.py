"""Run the aggregator: `python -m aggregator` (configuration from PZ_* variables)."""

from __future__ import annotations

import uvicorn

from aggregator.app import create_app
from aggregator.config import AggregatorConfig
from schemas.logs import configure_json_logging


def main() -> None:
    configure_json_logging("aggregator")
    config = AggregatorConfig.from_env()
    uvicorn.run(
        create_app(config), host=config.http_host, port=config.http_port, log_config=None, access_log=False
    )


if __name__ == "__main__":
    main()
