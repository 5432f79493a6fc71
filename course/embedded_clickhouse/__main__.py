"""Run the embedded ClickHouse server in the foreground: `python -m course.embedded_clickhouse`.

`course up` starts this in the background with the settings in its environment; run by hand,
it reads the same settings (environment, then `.env`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys

import uvicorn

from ..settings import SettingsError, is_loopback, load_settings
from .engine import Engine
from .http import ClickHouseHTTP, build_app

log = logging.getLogger("course.embedded_clickhouse")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course.embedded_clickhouse",
                                     description=__doc__)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not is_loopback(settings.clickhouse_host) and not settings.clickhouse_password:
        print(f"error: refusing to listen on {settings.clickhouse_host} without a password; "
              "set CLICKHOUSE_PASSWORD, or CLICKHOUSE_HOST=127.0.0.1", file=sys.stderr)
        return 2

    data_dir = settings.home / "clickhouse" / "data"
    log.info("opening chDB data in %s", data_dir)
    engine = Engine(data_dir)
    handler = ClickHouseHTTP(engine, settings.clickhouse_user, settings.clickhouse_password)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        async def expire() -> None:
            while True:
                await asyncio.sleep(5)
                await handler.blocking(engine.expire_sessions)

        task = asyncio.create_task(expire())
        log.info("ClickHouse %s ready on http://%s:%d", engine.version,
                 settings.clickhouse_host, settings.clickhouse_port)
        yield
        # Clean up here, not after server.run(): uvicorn re-raises SIGTERM once it returns.
        task.cancel()
        handler.pool.shutdown(wait=True, cancel_futures=True)
        engine.close()
        log.info("stopped; data is on disk")

    config = uvicorn.Config(
        build_app(handler, lifespan=lifespan),
        host=settings.clickhouse_host,
        port=settings.clickhouse_port,
        http="httptools",
        loop="uvloop",
        lifespan="on",
        access_log=False,
        log_level=args.log_level,
        # clickhouse-connect and dbt keep connections in a pool; the real server waits 30 s too.
        timeout_keep_alive=30,
        server_header=False,
        date_header=False,
    )
    server = uvicorn.Server(config)
    server.run()
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
