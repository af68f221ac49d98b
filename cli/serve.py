"""``gis serve``."""

from __future__ import annotations

from typing import Annotated

import typer

from cli import db
from cli.common import console
from gis.platform.config import get_settings


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Run the API (starting the embedded database if needed)."""
    import uvicorn

    from api.app import create_app

    settings = get_settings()
    db.up()
    host, port = host or settings.host, port or settings.port
    console.print(f"API on http://{host}:{port}/  (health: http://{host}:{port}/health, docs: http://{host}:{port}/docs)")
    # proxy_headers off: uvicorn would otherwise believe X-Forwarded-For/-Proto from 127.0.0.1 on its own; which
    # proxies are believed is Settings.trusted_proxies alone (api.proxy).
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info", proxy_headers=False)
