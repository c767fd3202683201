"""The dashboard's view model, built by pure functions from telemetry records and node states,
so the Redis source and the run-directory source render identically."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mpls_celery.telemetry.pulls import pull_counts
from mpls_celery.telemetry.records import EvalRecord, IterationRecord, Record

DONE = ("finished", "stopped")


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


@dataclass(frozen=True)
class Dashboard:
    run_id: str
    algorithm: str = "?"
    model: str = "?"
    dataset: str = "?"
    topology: str = "?"
    status: str = "?"
    elapsed: float = 0.0
    mean_acc: float | None = None
    best_acc: float | None = None
    workers: list[WorkerRow] = field(default_factory=list)
    acc_history: list[float] = field(default_factory=list)
    loss_history: list[float] = field(default_factory=list)
    worker_loss_history: list[float] = field(default_factory=list)
    worker_acc_history: list[float] = field(default_factory=list)
    heatmap_peers: list[int] = field(default_factory=list)
    heatmap: list[list[int]] = field(default_factory=list)  # peers × layers
    events: list[str] = field(default_factory=list)
    connected: bool = True
    message: str = ""


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


def heatmap(records: Iterable[IterationRecord]) -> tuple[list[int], list[list[int]]]:
    return pull_counts(records)


def event_line(record: Record) -> str:
    if isinstance(record, EvalRecord):
        return f"{record.t:8.1f}s  eval   mean acc {100 * record.mean_acc:5.1f} %  avg-model {100 * record.avg_model_acc:5.1f} %"
    plan = (
        " ".join(f"{p}:{','.join(map(str, ls))}" for p, ls in sorted(record.plan.items()))
        or "no pull"
    )
    return f"{record.t:8.1f}s  w{record.worker:<3} k={record.k:<5} loss {record.loss:.3f}  {plan}"


def history(
    evals: Sequence[EvalRecord],
) -> tuple[list[float], list[float], float | None, float | None]:
    accs = [e.mean_acc for e in evals]
    return (
        accs,
        [e.mean_loss for e in evals],
        (accs[-1] if accs else None),
        (max(accs) if accs else None),
    )
