"""Run the demo shop: `python -m pz.demo_shop --port 8081`."""

from __future__ import annotations

import argparse

import uvicorn

from pz.demo_shop.app import create_app


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m pz.demo_shop", description="The pz demo shop (an origin)."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args()
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
