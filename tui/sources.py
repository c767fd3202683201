"""Where the dashboard's data comes from: a live run in Redis (one pipelined round trip per
refresh once the run is known) or a finished run directory (metrics.jsonl)."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import redis

from mpls_celery.config.run_config import data_label
from mpls_celery.runtime.state.reader import RunReader
from mpls_celery.telemetry.link_traffic import link_traffic
from mpls_celery.telemetry.records import EvalRecord, IterationRecord, Record
from mpls_celery.telemetry.rundir import MANIFEST, read_json, read_metrics
from mpls_celery.telemetry.states import NodeState, WorkerState
from mpls_celery.telemetry.worker_table import worker_rows
from tui.model import Dashboard, LinkRow, event_line, heatmap, history, link_rows

EVENT_TAIL = 30


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    status: str
    algorithm: str
    workers: int
    age: float


class Source(Protocol):
    def runs(self) -> list[RunInfo]: ...

    def fetch(self, run_id: str, selected: int) -> Dashboard: ...


class RedisSource:
    """Reads only (through RunReader, which cannot write); never writes run state."""

    def __init__(self, client: redis.Redis, stale_after: float = 10.0, dead_after: float = 30.0):
        self.reader = RunReader(client)
        self.stale_after, self.dead_after = stale_after, dead_after
        self._configs: dict[str, dict[str, Any]] = {}

    def runs(self) -> list[RunInfo]:
        now = time.time()
        return [
            RunInfo(r.run_id, r.state, r.config["algorithm"], r.config["workers"], now - r.created)
            for r in self.reader.runs()
        ]

    def _config(self, run_id: str) -> dict[str, Any]:
        if run_id not in self._configs:
            config = self.reader.config(run_id)
            if config is None:
                raise KeyError(run_id)
            self._configs[run_id] = config
        return self._configs[run_id]

    def fetch(self, run_id: str, selected: int) -> Dashboard:
        cfg = self._config(run_id)
        view = self.reader.view(run_id, int(cfg["workers"]), selected, EVENT_TAIL)
        # the version a worker last published is in its state: right wherever its snapshots live
        versions = [node.version for node in view.nodes]
        now = time.time()
        started = view.status.started or now
        end = view.status.finished or now
        dashboard = _dashboard(
            run_id,
            cfg,
            str(view.status.state or "?"),
            end - started,
            worker_rows(view.nodes, versions, now, self.stale_after, self.dead_after),
            view.evals,
            view.recent,
            view.events,
            selected,
            link_rows(view.links, view.estimates),
        )
        return replace(dashboard, refused=view.status.refused)


def _dashboard(
    run_id: str,
    cfg: dict[str, Any],
    status: str,
    elapsed: float,
    rows: list[Any],
    evals: list[EvalRecord],
    recent: list[IterationRecord],
    events: list[Record],
    selected: int,
    links: list[LinkRow],
) -> Dashboard:
    accs, losses, mean_acc, best_acc = history(evals)
    peers, matrix = heatmap(recent)
    return Dashboard(
        run_id=run_id,
        algorithm=cfg.get("algorithm", "?"),
        model=cfg.get("model", "?"),
        dataset=data_label(cfg.get("dataset", "?")),
        topology=(cfg.get("topology") or {}).get("kind", "?"),
        status=status,
        elapsed=elapsed,
        mean_acc=mean_acc,
        best_acc=best_acc,
        workers=rows,
        acc_history=accs,
        loss_history=losses,
        worker_loss_history=[r.loss for r in recent],
        worker_acc_history=[
            acc
            for e in evals
            if selected < len(e.worker_acc) and (acc := e.worker_acc[selected]) is not None
        ],
        heatmap_peers=peers,
        heatmap=matrix,
        events=[event_line(r) for r in events],
        links=links,
    )


class RunDirSource:
    """A finished run directory (from `mpls up` or `mpls sim`); each algorithm is one 'run'."""

    def __init__(self, run_dir: Path, recent: int = 100) -> None:
        self.run_dir = run_dir
        self.config = read_json(run_dir / MANIFEST).get("config", {})
        self.records = list(read_metrics(run_dir))
        self.recent = recent

    def runs(self) -> list[RunInfo]:
        algos = list(dict.fromkeys(r.algo for r in self.records))
        return [
            RunInfo(
                f"{self.run_dir.name}/{a}", "finished", a, int(self.config.get("workers", 0)), 0.0
            )
            for a in algos
        ]

    def fetch(self, run_id: str, selected: int) -> Dashboard:
        algo = run_id.rsplit("/", 1)[-1]
        mine = [r for r in self.records if r.algo == algo]
        iterations = [r for r in mine if isinstance(r, IterationRecord)]
        evals = [r for r in mine if isinstance(r, EvalRecord)]
        n = int(self.config.get("workers", 0)) or (
            max((r.worker for r in iterations), default=-1) + 1
        )
        last: dict[int, IterationRecord] = {r.worker: r for r in iterations}
        final_acc = evals[-1].worker_acc if evals else []
        nodes = [
            NodeState(
                state=WorkerState.FINISHED,
                k=last[w].k + 1 if w in last else 0,
                loss=last[w].loss if w in last else None,
                acc=final_acc[w] if w < len(final_acc) else None,
            )
            for w in range(n)
        ]
        versions = [last[w].k + 1 if w in last else None for w in range(n)]
        rows = worker_rows(nodes, versions, 0.0, float("inf"), float("inf"))
        recent = [r for r in iterations if r.worker == selected][-self.recent :]
        duration = max([r.t for r in mine], default=0.0)
        cfg = {**self.config, "algorithm": algo}
        links = link_rows(link_traffic(mine))
        return _dashboard(
            run_id,
            cfg,
            "finished",
            duration,
            rows,
            evals,
            recent,
            mine[-EVENT_TAIL:],
            selected,
            links,
        )
