"""The worker table that `mpls up`, `mpls status` and the TUI all draw: rows built once from
node states by pure functions, and the cells every renderer shows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.table import Column, Table
from rich.text import Text

from mpls_celery.telemetry.states import LastPull, NodeState, WorkerState

COLUMNS = ("worker", "state", "iter", "version", "loss", "acc", "last pull", "link", "heartbeat")
STATE_STYLE = {
    "dead": "bold white on red",
    "failed": "bold white on red",
    "stale": "black on yellow",
    "retrying": "bold yellow",
    "finished": "green",
    "stopped": "dim",
}


@dataclass(frozen=True)
class WorkerRow:
    worker: int
    state: str  # a WorkerState, or what the reader sees: stale / dead / retrying
    k: int
    version: int | None
    loss: float | None
    acc: float | None
    last_pull: str
    bandwidth: float | None  # bytes/s estimate used by the scheduler
    heartbeat_age: float | None


def liveness(node: NodeState, age: float | None, stale_after: float, dead_after: float) -> str:
    state = "?" if node.state is None else str(node.state)
    if node.done or node.state is WorkerState.FAILED or age is None:
        return state
    if age > dead_after:
        return "dead"
    if age > stale_after:
        return "stale"
    if node.failures and node.failed_at == node.k:  # its last slice failed here: run again
        return "retrying"
    return state


def pull_text(pull: LastPull | None) -> str:
    if pull is None:
        return "—"
    text = f"{pull.peers}p×{pull.layers}l {pull.bytes / 1e3:.0f}kB {pull.seconds:.2f}s"
    return text + (" timeout" if pull.timeout else "")


def worker_rows(
    nodes: Sequence[NodeState],
    versions: Sequence[int | None],
    now: float,
    stale_after: float,
    dead_after: float,
) -> list[WorkerRow]:
    rows = []
    for worker, (node, version) in enumerate(zip(nodes, versions, strict=True)):
        age = node.silent_for(now)
        rows.append(
            WorkerRow(
                worker=worker,
                state=liveness(node, age, stale_after, dead_after),
                k=node.k,
                version=version,
                loss=node.loss,
                acc=node.acc,
                last_pull=pull_text(node.last_pull),
                bandwidth=node.bandwidth,
                heartbeat_age=age,
            )
        )
    return rows


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


def node_rows(nodes: Sequence[NodeState], now: float, dead_after: float) -> list[WorkerRow]:
    """Rows from node states alone (each carries its published version)."""
    return worker_rows(nodes, [n.version for n in nodes], now, dead_after / 3, dead_after)


def rich_worker_table(rows: Sequence[WorkerRow], title: str = "") -> Table:
    """A narrow terminal squeezes the numbers, never a worker's state (cut, "train…" could be
    training or trained)."""
    widest = max((len(row.state) for row in rows), default=len("state"))
    columns = [Column(c, no_wrap=True, min_width=widest) if c == "state" else c for c in COLUMNS]
    table = Table(*columns, title=title or None)
    for row in rows:
        table.add_row(*worker_cells(row))
    return table
