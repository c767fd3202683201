"""`mpls worker`: a Celery worker with the right queues and settings for this host."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from mpls_celery.devices import check_device, resolve_device
from mpls_celery.errors import ConfigError
from mpls_celery.runtime.backend.connection import validate_url
from mpls_celery.runtime.backend.redis_url import resolve_redis_url
from mpls_celery.runtime.keys import host_queues
from mpls_celery.settings import load_settings

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def parse_nodes(text: str) -> list[int]:
    """'0-2,5' → [0, 1, 2, 5]."""
    out: list[int] = []
    try:
        for part in text.split(","):
            lo, _, hi = part.partition("-")
            out += list(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise ConfigError(f"--nodes {text!r}: use worker ids like 0-2,5") from None
    return out


def worker(
    nodes: Annotated[
        str | None,
        typer.Option(
            help="Serve only these workers' queues (mpls.node.<i>), e.g. 0-2,5; default: the shared queue."
        ),
    ] = None,
    pull: Annotated[bool, typer.Option(help="Also serve aggregation tasks (mpls.pull).")] = True,
    concurrency: Annotated[int, typer.Option(min=1, help="Threads of this worker.")] = 32,
    redis: Annotated[str | None, typer.Option("--redis", help="Redis URL.")] = None,
    loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "INFO",
    device: Annotated[
        str | None,
        typer.Option(
            help="Train this host's workers here instead of the run's device: cuda:1, cpu."
        ),
    ] = None,
    imports: Annotated[
        list[Path] | None,
        typer.Option(
            "--import",
            help="A folder with the run's model or data code (repeatable; the current folder "
            "is searched anyway). Same as PYTHONPATH.",
        ),
    ] = None,
) -> None:
    """Run `celery -A mpls_celery worker` for this host (thread pool; slices and pulls)."""
    from mpls_celery.plugins import add_import_dirs, given_import_dirs  # torch: on use

    add_import_dirs([Path.cwd(), *given_import_dirs(imports)])
    ids = parse_nodes(nodes) if nodes else []
    queues = host_queues(ids if nodes else None, pulls=pull)
    # named or from the environment: a URL Celery would take for a transport module name
    url = validate_url(resolve_redis_url(load_settings(), redis))
    os.environ["MPLS_REDIS_URL"] = url
    if device:
        try:
            resolve_device(check_device(device))  # here: this host trains its workers on it
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        os.environ["MPLS_DEVICE"] = device
    if loglevel.upper() not in LOG_LEVELS:
        raise ConfigError(f"unknown log level {loglevel!r}; choose one of: {', '.join(LOG_LEVELS)}")
    from mpls_celery.runtime.backend.celery_app import app

    args = ["worker", f"--loglevel={loglevel}", "-Q", ",".join(queues), "-P", "threads"]
    app.worker_main([*args, "-c", str(concurrency), "--without-gossip", "--without-mingle"])
