"""`mpls down [RUN]`: stop a run. Its launcher, when alive, is asked to end it (it writes the
summary); a local run whose launcher died is ended here — its workers' records drained, a summary
written, its Celery processes and embedded Redis stopped; --purge deletes its keys too."""

from __future__ import annotations

import os
import signal
from typing import Annotated

import typer

from mpls_celery.cli.identifiers import check_run_id
from mpls_celery.cli.output import console
from mpls_celery.cli.runs_cmd import NowhereToLook, RedisOpt, find_run
from mpls_celery.config.run_config import RunConfig
from mpls_celery.errors import RedisUnavailable, RunNotFound
from mpls_celery.runtime.backend.connection import redis_client
from mpls_celery.runtime.launch.local_runs import LocalRun, local_runs
from mpls_celery.runtime.options import RuntimeOptions
from mpls_celery.runtime.store import RunStore
from mpls_celery.settings import load_settings
from mpls_celery.telemetry.states import RunState


def down(
    run: Annotated[
        str | None, typer.Argument(help="Run id (default: the newest active run).")
    ] = None,
    purge: Annotated[bool, typer.Option(help="Also delete every key of the run.")] = False,
    redis: RedisOpt = None,
) -> None:
    """Stop a run (its summary is written); --purge also deletes its keys."""
    if run is not None:
        check_run_id(run)
    local = _local(run) if run is not None or redis is None else None
    if local is not None and not local.launcher_alive:
        _end_orphan(local, purge)
        return
    try:
        client, _, row = find_run(redis, run)
    except (RunNotFound, RedisUnavailable) as exc:
        if local is not None and local.launcher_alive:  # its Redis is gone: ask the launcher
            os.kill(local.launcher_pid, signal.SIGTERM)
            console.print(
                f"run {local.run_id}: its Redis is unreachable; asked its launcher (pid "
                f"{local.launcher_pid}) to stop it and write its summary"
            )
            return
        raise RunNotFound(_not_found(run, exc)) from None
    store = RunStore(client, row.run_id)
    if store.run.running():
        store.run.set_status(RunState.STOPPING, reason="mpls down")
        console.print(f"run {row.run_id}: stopping")
    if purge:
        console.print(
            f"run {row.run_id}: deleted {store.run.purge(int(row.config['workers']))} keys"
        )


def _local(run: str | None) -> LocalRun | None:
    runs = local_runs(load_settings())
    return next((r for r in runs if run in (None, r.run_id)), None)


def _end_orphan(local: LocalRun, purge: bool) -> None:
    """A run whose launcher died: a launcher attaches only to end it."""
    from mpls_celery.runtime.launcher import UpRequest  # torch: only for a launcher's work
    from mpls_celery.runtime.up import run_down

    settings = load_settings()
    request = UpRequest(RunConfig(), RuntimeOptions(), settings, run_id=local.run_id, resume=True)
    summary = run_down(request)
    console.print(
        f"run {local.run_id}: its launcher had died; ended it here ({summary['reason']}); "
        f"summary in {summary['run_dir']}"
    )
    if purge and not local.embedded:  # an embedded Redis took the run's keys with it
        store = RunStore(redis_client(local.redis_url, settings), local.run_id)
        console.print(
            f"run {local.run_id}: deleted {store.run.purge(len(summary['workers']))} keys"
        )


def _not_found(run: str | None, exc: Exception) -> str:
    if isinstance(exc, NowhereToLook):
        return str(exc)
    if run is None:
        return f"no active run found ({exc})"
    if isinstance(exc, RedisUnavailable):
        return f"no run {run!r}: none on this machine, and {exc}"
    return f"no run {run!r}: none on this machine nor in Redis (`mpls runs` lists them)"
