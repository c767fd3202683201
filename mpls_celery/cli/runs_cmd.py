"""`mpls runs`, `mpls status [RUN]`, `mpls down [RUN]`: look at and stop runs in Redis."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.table import Table

from mpls_celery.cli.output import console, print_json
from mpls_celery.errors import RunNotFound
from mpls_celery.runtime.connection import check_reachable, redis_client, safe_url
from mpls_celery.runtime.redis_url import resolve_redis_url
from mpls_celery.runtime.store import RunStore, list_runs
from mpls_celery.settings import load_settings

RedisOpt = Annotated[
    str | None, typer.Option("--redis", help="Redis URL (default: REDIS_URL or the local mpls up).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _client(redis: str | None):  # type: ignore[no-untyped-def]
    settings = load_settings()
    url = resolve_redis_url(settings, redis)
    check_reachable(url, settings)
    return redis_client(url, settings), url


def _pick(client: Any, run: str | None) -> RunStore:
    runs = list_runs(client)
    if run is None:
        if not runs:
            raise RunNotFound("no runs in this Redis; start one with `mpls up`")
        active = [r for r, _ in runs if RunStore(client, r).status().get("state") == "running"]
        run = active[0] if active else runs[0][0]
    store = RunStore(client, run)
    if not store.exists():
        raise RunNotFound(f"run {run!r} not found; `mpls runs` lists them")
    return store


def run_rows(client: Any) -> list[dict[str, Any]]:
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
            }
        )
    return rows


def runs(redis: RedisOpt = None, as_json: JsonOpt = False) -> None:
    """List the runs in Redis, newest first."""
    client, _ = _client(redis)
    rows = run_rows(client)
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
    client, url = _client(redis)
    store = _pick(client, run)
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
    """Ask a run to stop (its launcher writes the summary); --purge deletes its keys."""
    client, _ = _client(redis)
    store = _pick(client, run)
    if store.status().get("state") == "running":
        store.set_status("stopping", reason="mpls down")
        console.print(f"run {store.run_id}: stopping")
    if purge:
        console.print(f"run {store.run_id}: deleted {store.purge()} keys")
