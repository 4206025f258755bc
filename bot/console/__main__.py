"""Run the console: ``python -m bot.console [--seed-demo]``.

Migrates the database to head, then serves the console on BIND_HOST:CONSOLE_PORT (default
127.0.0.1:8000) until Ctrl-C.
"""

from __future__ import annotations

import argparse
import logging
from typing import List, Optional

import uvicorn

from bot.console.app import create_app
from bot.core.db import upgrade_database
from bot.core.privacy import install_log_masking
from bot.core.settings import get_settings

logger = logging.getLogger("bot.console")


def main(argv: Optional[List[str]] = None) -> None:
    """Migrate, optionally seed demo billing/outage data, and serve."""
    parser = argparse.ArgumentParser(prog="python -m bot.console", description=__doc__)
    parser.add_argument("--seed-demo", action="store_true", help="add demo bills and outages")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    install_log_masking()

    settings = get_settings()
    upgrade_database(settings.database_url)
    if args.seed_demo:
        from bot.core.seed import seed_default_database

        logger.info("demo data: %s", seed_default_database(settings.database_url))
    settings.api_token()  # creates var/api_token when INTAKE_API_TOKEN is unset
    source = "INTAKE_API_TOKEN" if settings.api_token_env else None
    logger.info("JSON API bearer token: %s", source or settings.api_token_file)
    uvicorn.run(
        create_app(settings), host=settings.bind_host, port=settings.console_port, log_level="info"
    )


if __name__ == "__main__":
    main()
