"""Runs written into a real Redis through the runtime's own store and telemetry code."""

from __future__ import annotations

import time

import orjson
import redis

from mpls_celery.config.run_config import RunConfig
from mpls_celery.runtime.store import RunStore
from mpls_celery.telemetry.records import EvalRecord, IterationRecord, Record
from mpls_celery.telemetry.states import LastPull, WorkerState
from mpls_celery.telemetry.worker_table import WorkerRow
from tui.model import Dashboard


def populate(
    client: redis.Redis, run_id: str, workers: int = 4, iterations: int = 5, algorithm: str = "mpls"
) -> RunStore:
    store = RunStore(client, run_id)
    cfg = RunConfig().with_overrides(workers=workers, algorithm=algorithm, model="mlp")
    store.run.create({"run": cfg.model_dump(mode="json"), "options": {}, "layout": []})
    for k in range(iterations):
        accepted: list[Record] = []
        for w in range(workers):
            peers = [p for p in range(workers) if p != w][:2]
            record = IterationRecord(algorithm, w, k, float(k + 1), k * workers + w + 1, 2.0 - 0.1 * k,
                                     {p: [k % 2, 1] for p in peers}, 1e5, 0.1, 0.05, len(peers),
                                     links={p: [2e4 * (p + 1), 0.1, float(k)] for p in peers})  # fmt: skip
            store.events.emit(record, links={p: 1e6 * (p + 1) for p in peers})
            accepted.append(record)
            client.set(
                store.keys.head(w), orjson.dumps({"version": k + 1, "g": [0.0, 0.0], "t": 0.0})
            )
            store.nodes.update(w, state=WorkerState.IDLE, k=k + 1, version=k + 1, loss=record.loss,
                               acc=0.1 * (k + 1),
                               last_pull=LastPull(peers=2, layers=3, bytes=100_000, seconds=0.1))  # fmt: skip
        evaluation = EvalRecord(
            algorithm,
            float(k + 1),
            (k + 1) * workers,
            0.1 * (k + 1),
            0.1 * (k + 1),
            2.0 - 0.1 * k,
            [0.1 * (k + 1)] * workers,
        )
        store.events.show([*accepted, evaluation])  # what a launcher accepts, for the dashboard
    return store


def age(client: redis.Redis, store: RunStore, worker: int, seconds: float) -> None:
    client.hset(store.keys.state(worker), "heartbeat", orjson.dumps(time.time() - seconds))


class StaticSource:
    """Fixed data for snapshot tests: no clocks, no Redis."""

    def __init__(self, data: Dashboard) -> None:
        self.data = data

    def runs(self):  # type: ignore[no-untyped-def]
        return []

    def fetch(self, run_id: str, selected: int) -> Dashboard:
        return self.data


FIXED = Dashboard(
    run_id="20261127-120000-abcd",
    algorithm="mpls",
    model="lenet5",
    dataset="digits",
    topology="random",
    status="running",
    elapsed=42.0,
    mean_acc=0.734,
    best_acc=0.741,
    workers=[
        WorkerRow(0, "training", 31, 31, 0.812, 0.71, "2p×6l 494kB 0.08s", 5.2e7, 0.3),
        WorkerRow(1, "pulling", 30, 30, 0.776, 0.74, "3p×7l 612kB 0.11s", 4.8e7, 0.6),
        WorkerRow(2, "stale", 24, 24, 0.95, 0.66, "1p×5l 247kB 0.05s", 6.1e7, 12.4),
        WorkerRow(3, "dead", 12, 12, 1.31, 0.52, "—", None, 45.0),
    ],
    acc_history=[0.1, 0.2, 0.35, 0.5, 0.61, 0.68, 0.73],
    loss_history=[2.3, 1.9, 1.5, 1.2, 1.0, 0.9, 0.85],
    worker_loss_history=[2.2, 1.8, 1.4, 1.1, 0.9, 0.81],
    worker_acc_history=[0.1, 0.3, 0.5, 0.6, 0.71],
    heatmap_peers=[1, 2, 4],
    heatmap=[[9, 2, 7, 1, 8], [3, 0, 5, 6, 2], [0, 8, 1, 2, 0]],
    events=[
        "    41.7s  w0   k=30    loss 0.812  1:0,2,4 2:1,3",
        "    41.9s  w1   k=29    loss 0.776  0:0,1 2:2 4:3,4",
        "    42.0s  eval   mean acc  73.4 %  avg-model  75.0 %",
    ],
)
