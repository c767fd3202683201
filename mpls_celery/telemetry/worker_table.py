"""The worker table that `mpls up`, `mpls status` and the TUI all draw: rows built once from
node states by pure functions, and the cells every renderer shows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.table import Table
from rich.text import Text

DONE = ("finished", "stopped")
COLUMNS = ("worker", "state", "iter", "version", "loss", "acc", "last pull", "link", "heartbeat")
STATE_STYLE = {
    "dead": "bold white on red",
    "stale": "black on yellow",
    "finished": "green",
    "stopped": "dim",
}


@dataclass(frozen=True)
class WorkerRow:
    worker: int
    state: str  # training / pulling / averaging / idle / queued / finished / stopped / stale / dead
    k: int
    version: int | None
    loss: float | None
    acc: float | None
    last_pull: str
    bandwidth: float | None  # bytes/s estimate used by the scheduler
    heartbeat_age: float | None


def liveness(state: str, age: float | None, stale_after: float, dead_after: float) -> str:
    if state in DONE or age is None:
        return state
    if age > dead_after:
        return "dead"
    if age > stale_after:
        return "stale"
    return state


def pull_text(pull: dict[str, Any] | None) -> str:
    if not pull:
        return "—"
    text = f"{pull.get('peers', 0)}p×{pull.get('layers', 0)}l {pull.get('bytes', 0) / 1e3:.0f}kB {pull.get('seconds', 0):.2f}s"
    return text + (" timeout" if pull.get("timeout") else "")


def worker_rows(
    nodes: Sequence[dict[str, Any]],
    versions: Sequence[int | None],
    now: float,
    stale_after: float,
    dead_after: float,
) -> list[WorkerRow]:
    rows = []
    for worker, (node, version) in enumerate(zip(nodes, versions, strict=True)):
        beat = node.get("heartbeat")
        age = max(0.0, now - float(beat)) if beat is not None else None
        rows.append(
            WorkerRow(
                worker=worker,
                state=liveness(str(node.get("state", "?")), age, stale_after, dead_after),
                k=int(node.get("k", 0)),
                version=version,
                loss=_float(node.get("loss")),
                acc=_float(node.get("acc")),
                last_pull=pull_text(node.get("last_pull")),
                bandwidth=_float(node.get("bandwidth")),
                heartbeat_age=age,
            )
        )
    return rows


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def worker_cells(row: WorkerRow) -> tuple[Text | str, ...]:
    return (
        str(row.worker),
        Text(row.state, style=STATE_STYLE.get(row.state, "")),
        str(row.k),
        "—" if row.version is None else str(row.version),
        "—" if row.loss is None else f"{row.loss:.3f}",
        "—" if row.acc is None else f"{100 * row.acc:.1f} %",
        row.last_pull,
        "—" if row.bandwidth is None else f"{row.bandwidth / 1e6:.1f} MB/s",
        "—" if row.heartbeat_age is None else f"{row.heartbeat_age:.1f}s",
    )


def node_rows(nodes: Sequence[dict[str, Any]], now: float, dead_after: float) -> list[WorkerRow]:
    """Rows from node state hashes alone (each carries its published version)."""
    return worker_rows(nodes, [n.get("version") for n in nodes], now, dead_after / 3, dead_after)


def rich_worker_table(rows: Sequence[WorkerRow], title: str = "") -> Table:
    table = Table(*COLUMNS, title=title or None)
    for row in rows:
        table.add_row(*worker_cells(row))
    return table
