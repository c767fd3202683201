"""The dashboard's view model, built by pure functions from telemetry records and node states,
so the Redis source and the run-directory source render identically."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from mpls_celery.telemetry.link_traffic import LinkTraffic
from mpls_celery.telemetry.pulls import pull_counts
from mpls_celery.telemetry.records import EvalRecord, IterationRecord, ProbeRecord, Record
from mpls_celery.telemetry.worker_table import WorkerRow


@dataclass(frozen=True)
class LinkRow:
    """One puller ← peer link: the speed the puller's scheduler uses now (its estimate; in a
    finished run, the speed measured over the run), what crossed it, and when it last did."""

    puller: int
    peer: int
    mbit: float | None
    megabytes: float
    pulls: int
    last_t: float | None


def link_rows(
    links: Iterable[LinkTraffic], estimates: Mapping[tuple[int, int], float] | None = None
) -> list[LinkRow]:
    estimates = estimates or {}
    rows = []
    for link in links:
        estimate = estimates.get((link.puller, link.peer))
        mbit = estimate * 8 / 1e6 if estimate is not None else link.mbit
        rows.append(
            LinkRow(link.puller, link.peer, mbit, link.bytes / 1e6, link.pulls, link.last_t)
        )
    return rows


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
    links: list[LinkRow] = field(default_factory=list)
    connected: bool = True
    message: str = ""
    refused: int = 0  # values read from Redis that the launcher or the workers refused


def heatmap(records: Iterable[IterationRecord]) -> tuple[list[int], list[list[int]]]:
    return pull_counts(records)


def event_line(record: Record) -> str:
    if isinstance(record, EvalRecord):
        return f"{record.t:8.1f}s  eval   mean acc {100 * record.mean_acc:5.1f} %  avg-model {100 * record.avg_model_acc:5.1f} %"
    if isinstance(record, ProbeRecord):
        speeds = " ".join(
            f"{p}:{8 * b / s / 1e6:.1f}" for p, (b, s, *_) in sorted(record.links.items()) if s > 0
        )
        return f"{record.t:8.1f}s  w{record.worker:<3} probe  Mbit/s {speeds}"
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
