"""`mpls runs`, `mpls status [RUN]`, `mpls down [RUN]`: look at and stop runs in Redis."""

from __future__ import annotations

import os
import signal
import time
from typing import Annotated, Any

import typer
from rich.table import Table

from mpls_celery.cli.output import console, print_json
from mpls_celery.errors import RedisUnavailable, RunNotFound
from mpls_celery.runtime.connection import check_reachable, redis_client, safe_url
from mpls_celery.runtime.local_runs import live_runs
from mpls_celery.runtime.redis_url import candidate_urls
from mpls_celery.runtime.store import RunStore, list_runs
from mpls_celery.settings import load_settings

RedisOpt = Annotated[
    str | None, typer.Option("--redis", help="Redis URL (default: REDIS_URL or the local mpls up).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _stores(redis: str | None) -> list[tuple[Any, str]]:
    """(client, url) for every reachable Redis that may hold runs: the one named, else each live
    local `mpls up`'s own Redis and the default. A named Redis that is down is an error."""
    settings = load_settings()
    urls = candidate_urls(settings, redis)
    out = []
    for url in urls:
        try:
            check_reachable(url, settings)
        except RedisUnavailable:
            if len(urls) == 1:
                raise
            continue
        out.append((redis_client(url, settings), url))
    return out


def _pick(redis: str | None, run: str | None) -> tuple[RunStore, str]:
    """The named run wherever it is, else the newest active run, else the newest run."""
    found: list[tuple[float, bool, RunStore, str]] = []
    for client, url in _stores(redis):
        for run_id, created in list_runs(client):
            if run is not None and run_id != run:
                continue
            store = RunStore(client, run_id)
            if store.exists():
                active = store.status().get("state") == "running"
                found.append((created, active, store, url))
    if not found:
        if run is not None:
            raise RunNotFound(f"run {run!r} not found; `mpls runs` lists them")
        raise RunNotFound("no runs found; start one with `mpls up`")
    found.sort(key=lambda f: (f[1], f[0]), reverse=True)
    return found[0][2], found[0][3]


def run_rows(client: Any, where: str = "") -> list[dict[str, Any]]:
    rows = []
    for run_id, created in list_runs(client):
        store = RunStore(client, run_id)
        if not store.exists():
            continue
        cfg = store.config()["run"]
        rows.append(
            {
                "run": run_id,
                "status": store.status().get("state", "?"),
                "algorithm": cfg["algorithm"],
                "workers": cfg["workers"],
                "model": cfg["model"],
                "dataset": cfg["dataset"],
                "age_seconds": round(time.time() - created, 1),
                "redis": where,
            }
        )
    return rows


def runs(redis: RedisOpt = None, as_json: JsonOpt = False) -> None:
    """List the runs in Redis (every local `mpls up`'s Redis without --redis), newest first."""
    rows = [row for client, url in _stores(redis) for row in run_rows(client, safe_url(url))]
    rows.sort(key=lambda row: row["age_seconds"])
    if as_json:
        print_json(rows)
        return
    table = Table("run", "status", "algorithm", "workers", "model/dataset", "age")
    for row in rows:
        table.add_row(row["run"], row["status"], row["algorithm"], str(row["workers"]),
                      f"{row['model']}/{row['dataset']}", f"{row['age_seconds']:.0f}s")  # fmt: skip
    console.print(table)


def status(
    run: Annotated[
        str | None, typer.Argument(help="Run id (default: the newest active run).")
    ] = None,
    redis: RedisOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show one run: its status and every worker's progress."""
    store, url = _pick(redis, run)
    cfg = store.config()["run"]
    nodes = store.node_states(range(cfg["workers"]))
    doc = {"run": store.run_id, "redis": safe_url(url), "status": store.status(), "workers": nodes}
    if as_json:
        print_json(doc)
        return
    console.print(f"run {store.run_id} · {doc['status'].get('state')} · {cfg['algorithm']} · "
                  f"{cfg['model']}/{cfg['dataset']} · Redis {safe_url(url)}")  # fmt: skip
    table = Table("worker", "state", "iter", "loss", "acc", "heartbeat age")
    now = time.time()
    for w, node in enumerate(nodes):
        beat = node.get("heartbeat")
        table.add_row(
            str(w), str(node.get("state", "?")), str(node.get("k", 0)),
            f"{node['loss']:.3f}" if node.get("loss") is not None else "—",
            f"{100 * node['acc']:.1f} %" if node.get("acc") is not None else "—",
            f"{now - float(beat):.1f}s" if beat else "—",
        )  # fmt: skip
    console.print(table)


def down(
    run: Annotated[
        str | None, typer.Argument(help="Run id (default: the newest active run).")
    ] = None,
    purge: Annotated[bool, typer.Option(help="Also delete every key of the run.")] = False,
    redis: RedisOpt = None,
) -> None:
    """Ask a run to stop (its launcher writes the summary); --purge deletes its keys. A local
    run whose Redis is unreachable is stopped through its launcher (SIGTERM)."""
    try:
        store, _ = _pick(redis, run)
    except (RunNotFound, RedisUnavailable):
        if not _terminate_local(run):
            raise
        return
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
