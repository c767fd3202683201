"""`mpls runs`, `mpls status [RUN]`: look at runs (read-only: this module cannot write run state;
`mpls down` lives in down_cmd)."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Annotated, Any

import redis as redis_lib
import typer
from rich.table import Column, Table

from mpls_celery.cli.identifiers import check_run_id
from mpls_celery.cli.output import console, print_json
from mpls_celery.config.run_config import data_label
from mpls_celery.errors import RedisUnavailable, RunNotFound
from mpls_celery.runtime.backend.connection import check_reachable, redis_client, safe_url
from mpls_celery.runtime.backend.redis_url import DEFAULT_URL, candidate_urls
from mpls_celery.runtime.launch.local_runs import live_runs, local_runs
from mpls_celery.runtime.state.reader import RunReader, RunRow
from mpls_celery.settings import load_settings
from mpls_celery.telemetry.worker_table import node_rows, rich_worker_table

RedisOpt = Annotated[
    str | None, typer.Option("--redis", help="Redis URL (default: REDIS_URL or the local mpls up).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _readers(redis: str | None) -> list[tuple[redis_lib.Redis, str]]:
    """(client, url) for every reachable Redis that may hold runs: the one named, else each live
    local `mpls up`'s own Redis and the default. A named Redis that is down is an error; the
    default, only a place to look (after a local run has ended, nothing answers there)."""
    settings = load_settings()
    named = bool(redis or settings.redis_url)
    out = []
    for url in candidate_urls(settings, redis):
        try:
            check_reachable(url, settings)
        except RedisUnavailable:
            if named:
                raise
            continue
        out.append((redis_client(url, settings), url))
    return out


class NowhereToLook(RunNotFound):
    """No Redis was named and none could be read: no live local run's, not the default."""


NOWHERE = (
    f"no `mpls up` is live here and no Redis answers at {DEFAULT_URL} (--redis URL names "
    "another); a finished run is in its run directory (mpls report DIR, mpls tui DIR)"
)


def _nowhere() -> str:
    """Why no Redis was read: nothing runs here, or (a launcher in an outage) its Redis is down."""
    settings = load_settings()
    if not live_runs(settings):
        return NOWHERE
    urls = ", ".join(safe_url(url) for url in candidate_urls(settings))
    return f"no Redis answers (tried {urls}); a live local run's Redis is down"


def find_run(redis: str | None, run: str | None) -> tuple[redis_lib.Redis, str, RunRow]:
    """The named run wherever it is, else the newest active run, else the newest run."""
    found: list[tuple[redis_lib.Redis, str, RunRow]] = []
    readers = _readers(redis)
    for client, url in readers:
        found += [
            (client, url, row) for row in RunReader(client).runs() if run in (None, row.run_id)
        ]
    if not found:
        if not readers:
            where = _nowhere()
            raise NowhereToLook(f"no run {run!r}: {where}" if run else f"no runs: {where}")
        if run is not None:
            raise RunNotFound(f"run {run!r} not found; `mpls runs` lists them")
        raise RunNotFound("no runs found; start one with `mpls up`")
    found.sort(key=lambda f: (f[2].state == "running", f[2].created), reverse=True)
    return found[0]


def launcher_of(run_id: str) -> str:
    """'alive' / 'dead' for a run started on this machine, else '' (its launcher is elsewhere)."""
    local = next((r for r in local_runs(load_settings()) if r.run_id == run_id), None)
    return "" if local is None else ("alive" if local.launcher_alive else "dead")


def run_rows(client: redis_lib.Redis, where: str = "") -> list[dict[str, Any]]:
    return [
        {
            "run": row.run_id,
            "status": row.state,
            "launcher": launcher_of(row.run_id),
            "algorithm": row.config["algorithm"],
            "workers": row.config["workers"],
            "model": row.config["model"],
            "dataset": data_label(row.config["dataset"]),
            "age_seconds": round(time.time() - row.created, 1),
            "redis": where,
        }
        for row in RunReader(client).runs()
    ]


def runs(redis: RedisOpt = None, as_json: JsonOpt = False) -> None:
    """List the runs in Redis (every local `mpls up`'s Redis without --redis), newest first."""
    readers = _readers(redis)
    rows = [row for client, url in readers for row in run_rows(client, safe_url(url))]
    rows.sort(key=lambda row: row["age_seconds"])
    if as_json:
        print_json(rows)
        return
    if not readers:
        console.print(f"no runs: {_nowhere()}")
        return
    # the id is what `mpls status/down/tui` take: whole, never cut; long names fold, not cut
    ids = Column("run", no_wrap=True, min_width=max((len(row["run"]) for row in rows), default=3))
    table = Table(ids, "status", "launcher", "workers", Column("training", overflow="fold"), "age")
    for row in rows:
        training = f"{row['algorithm']} · {row['model']}/{row['dataset']}"  # as `mpls status`
        table.add_row(row["run"], row["status"], row["launcher"] or "—", str(row["workers"]),
                      training, f"{row['age_seconds']:.0f}s")  # fmt: skip
    dead = [row["run"] for row in rows if row["launcher"] == "dead" and row["status"] != "finished"]
    if dead:
        table.caption = (
            f"launcher dead: `mpls up --resume {dead[0]}` goes on, `mpls down {dead[0]}` ends it"
        )
    console.print(table)


def status(
    run: Annotated[
        str | None, typer.Argument(help="Run id (default: the newest active run).")
    ] = None,
    redis: RedisOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show one run: its status and every worker's progress."""
    if run is not None:
        check_run_id(run)
    client, url, row = find_run(redis, run)
    reader, cfg = RunReader(client), row.config
    nodes = reader.node_states(row.run_id, int(cfg["workers"]))
    status = reader.status(row.run_id)
    doc = {
        "run": row.run_id,
        "redis": safe_url(url),
        "status": asdict(status),
        "launcher": launcher_of(row.run_id),
        "workers": [asdict(n) for n in nodes],
    }
    if as_json:
        print_json(doc)
        return
    launcher = f" · launcher {doc['launcher']}" if doc["launcher"] else ""
    console.print(f"run {row.run_id} · {status.state or '?'}{launcher} · {cfg['algorithm']} · "
                  f"{cfg['model']}/{data_label(cfg['dataset'])} · Redis {safe_url(url)}")  # fmt: skip
    table = rich_worker_table(node_rows(nodes, time.time(), dead_after=30.0))
    console.print(table)
