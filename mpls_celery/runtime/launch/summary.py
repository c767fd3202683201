"""A runtime run's summary (summary.json) and trace (trace.json), from its run directory and the
workers' last states: as complete as what was stored. Where the disk refuses them, the summary
is still returned (and printed) and says so."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mpls_celery.errors import TelemetryError
from mpls_celery.runtime.launch.sink import disk_problem
from mpls_celery.runtime.launch.stop_policy import NOTHING_DONE, Stop
from mpls_celery.telemetry.records import EvalRecord, IterationRecord, Record
from mpls_celery.telemetry.rundir import METRICS, SUMMARY, read_metrics, saved_models, write_json
from mpls_celery.telemetry.states import NodeState
from mpls_celery.telemetry.summary import summary_document
from mpls_celery.telemetry.trace import build_trace, write_trace

log = logging.getLogger(__name__)


@dataclass
class RunOutcome:
    """What the launcher knows at the end, besides the run directory."""

    run_id: str
    run_dir: Path
    workers: int
    target_acc: float | None
    stop: Stop
    wall_seconds: float
    nodes: Sequence[NodeState] = ()
    final: EvalRecord | None = None
    dead: dict[int, float] = field(default_factory=dict)
    pauses: list[dict[str, Any]] = field(default_factory=list)
    refused: dict[str, Any] = field(default_factory=dict)
    resumed: list[float] = field(default_factory=list)  # wall s into the run a launcher re-attached
    celery_restarts: int = 0  # local Celery processes restarted after a crash (not an outage)


def write_summary(outcome: RunOutcome) -> dict[str, Any]:
    """summary.json and trace.json; the summary document either way."""
    records = _records(outcome.run_dir)
    stop = outcome.stop
    if not any(isinstance(r, IterationRecord) for r in records):
        stop = stop.also(NOTHING_DONE)
    summary = document(outcome, records, stop)
    try:
        outcome.run_dir.mkdir(parents=True, exist_ok=True)
        write_json(outcome.run_dir / SUMMARY, summary)
        if records:
            write_trace(outcome.run_dir, build_trace(records, outcome.workers))
    except OSError as exc:
        problem = disk_problem(outcome.run_dir / SUMMARY, exc)
        log.error("%s", problem)
        if not summary["failed"]:
            summary.update(reason=f"{summary['reason']}; {problem}", failed=True)
        summary["written"] = False
    return summary


def document(outcome: RunOutcome, records: list[Record], stop: Stop) -> dict[str, Any]:
    nodes = list(outcome.nodes) or [NodeState() for _ in range(outcome.workers)]
    final = outcome.final
    worker_acc: list[float | None] = final.worker_acc if final else [None] * outcome.workers
    return summary_document(
        records,
        outcome.target_acc,
        run_id=outcome.run_id,
        run_dir=str(outcome.run_dir.resolve()),
        models=saved_models(outcome.run_dir),
        reason=stop.reason,
        failed=stop.failed,
        wall_seconds=round(outcome.wall_seconds, 2),
        workers=[
            {
                "worker": w,
                "iteration": node.k,
                "state": None if node.state is None else str(node.state),
                "accuracy": worker_acc[w] if w < len(worker_acc) else None,
                "recovered": node.recovered,
                "error": node.error,
            }
            for w, node in enumerate(nodes)
        ],
        dead=[{"worker": w, "since": t} for w, t in sorted(outcome.dead.items())],
        final_mean_acc=final.mean_acc if final else None,
        final_avg_model_acc=final.avg_model_acc if final else None,
        pauses=outcome.pauses,
        refused=outcome.refused,
        resumed=outcome.resumed,
        celery_restarts=outcome.celery_restarts,
    )


def _records(run_dir: Path) -> list[Record]:
    if not (run_dir / METRICS).is_file():
        return []
    try:
        return list(read_metrics(run_dir))
    except (TelemetryError, OSError) as exc:
        log.error("the summary leaves out %s: %s", run_dir / METRICS, exc)
        return []
