"""`mpls down [RUN]`: ask a run to stop (its launcher writes the summary), or delete its keys."""

from __future__ import annotations

import os
import signal
from typing import Annotated

import typer

from mpls_celery.cli.output import console
from mpls_celery.cli.runs_cmd import RedisOpt, find_run
from mpls_celery.errors import RedisUnavailable, RunNotFound
from mpls_celery.runtime.local_runs import live_runs
from mpls_celery.runtime.store import RunStore
from mpls_celery.settings import load_settings


def down(
    run: Annotated[
        str | None, typer.Argument(help="Run id (default: the newest active run).")
    ] = None,
    purge: Annotated[bool, typer.Option(help="Also delete every key of the run.")] = False,
    redis: RedisOpt = None,
) -> None:
    """Ask a run to stop (its launcher writes the summary); --purge deletes its keys; a local
    run whose Redis is gone is stopped through its launcher."""
    try:
        client, _, row = find_run(redis, run)
    except (RunNotFound, RedisUnavailable):
        if not _terminate_local(run):
            raise
        return
    store = RunStore(client, row.run_id)
    if store.status().get("state") == "running":
        store.set_status("stopping", reason="mpls down")
        console.print(f"run {store.run_id}: stopping")
    if purge:
        console.print(f"run {store.run_id}: deleted {store.purge()} keys")


def _terminate_local(run: str | None) -> bool:
    """SIGTERM to the launcher of a local run (the named one, else the newest)."""
    local = [r for r in live_runs(load_settings()) if run is None or r.run_id == run]
    if not local:
        return False
    target = local[0]
    os.kill(target.launcher_pid, signal.SIGTERM)
    console.print(
        f"run {target.run_id}: its Redis is unreachable; asked its launcher (pid "
        f"{target.launcher_pid}) to stop it and write its summary"
    )
    return True
