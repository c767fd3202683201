"""`mpls redis start`: a private Redis in the foreground, for workers on this host to share."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from mpls_celery.errors import ConfigError
from mpls_celery.runtime.backend.embedded_redis import EmbeddedRedis

app = typer.Typer(help="Run the embedded Redis server.", no_args_is_help=True)


@app.command("start")
def start(
    port: Annotated[int, typer.Option(help="Port; 0 picks a free one.")] = 0,
    bind: Annotated[
        str, typer.Option(help="Address to listen on (not loopback: set --password).")
    ] = "127.0.0.1",
    password: Annotated[str | None, typer.Option(help="requirepass for the server.")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Directory for AOF files.")] = None,
    appendonly: Annotated[bool, typer.Option(help="Persist with AOF.")] = False,
) -> None:
    """Start redis-server (system or bundled) and keep it running until Ctrl-C."""
    if bind not in ("127.0.0.1", "localhost") and not password:
        raise ConfigError(f"--bind {bind} exposes Redis beyond this machine: set --password")
    server = EmbeddedRedis(
        password=password, data_dir=data_dir, appendonly=appendonly, port=port, bind=bind
    )
    server.start()
    typer.echo(server.url, err=False)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
