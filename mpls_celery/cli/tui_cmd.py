"""`mpls tui [RUN | RUN_DIR] [--redis URL]`: the live dashboard."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mpls_celery.cli.identifiers import is_run_id
from mpls_celery.cli.runs_cmd import NOWHERE, NowhereToLook
from mpls_celery.config.yaml_io import shown
from mpls_celery.errors import RedisUnavailable, RunNotFound
from mpls_celery.runtime.backend.connection import check_reachable, redis_client
from mpls_celery.runtime.backend.redis_url import DEFAULT_URL, resolve_redis_url
from mpls_celery.runtime.launch.local_runs import find
from mpls_celery.settings import load_settings

if TYPE_CHECKING:
    from tui.sources import RedisSource


def tui(
    target: Annotated[
        str | None, typer.Argument(help="Run id, or a run directory (from mpls sim / mpls up).")
    ] = None,
    redis: Annotated[
        str | None,
        typer.Option("--redis", help="Redis URL (default: REDIS_URL or the local mpls up)."),
    ] = None,
    dead_after: Annotated[
        float, typer.Option(help="Seconds without a heartbeat before a worker is dead.")
    ] = 30.0,
) -> None:
    """Watch a run: workers, accuracy, the scheduler's peer × layer choices, events."""
    from tui.app import create_app
    from tui.sources import RunDirSource

    if target and _is_dir(target):
        folder = RunDirSource(Path(target))
        create_app(folder, folder.runs()[0].run_id if folder.runs() else None).run()
        return
    if target and not is_run_id(target):
        raise RunNotFound(f"no run directory or run id named {shown(target)!r}")
    source = open_redis_source(redis, dead_after, target)
    if target and target not in {run.run_id for run in source.runs()}:
        raise RunNotFound(f"no run directory or run id named {target!r}; `mpls runs` lists runs")
    create_app(source, target).run()


def _is_dir(target: str) -> bool:
    try:
        return Path(target).is_dir()
    except OSError:  # a name too long for the file system is no directory
        return False


def open_redis_source(
    redis: str | None, dead_after: float = 30.0, run_id: str | None = None
) -> RedisSource:
    """Fails here, with one line, when Redis is unreachable, refuses the password or the TLS
    certificate; once the dashboard runs it shows "disconnected" and retries instead."""
    from tui.sources import RedisSource

    settings = load_settings()
    local = find(settings, run_id) if run_id and not (redis or settings.redis_url) else None
    url = local.redis_url if local else resolve_redis_url(settings, redis)
    try:
        check_reachable(url, settings)
    except RedisUnavailable as exc:
        if run_id:  # a name that is no directory: say both what is missing and what is down
            raise RunNotFound(f"no run directory named {run_id!r}, and {exc}") from None
        if url == DEFAULT_URL and not (redis or settings.redis_url):  # nothing is running here
            raise NowhereToLook(f"no runs to watch: {NOWHERE}") from None
        raise
    return RedisSource(
        redis_client(url, settings, timeout=1.0, retries=0),
        stale_after=dead_after / 3,
        dead_after=dead_after,
    )
