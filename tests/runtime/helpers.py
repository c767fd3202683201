"""Start a real run (launcher in a thread, real Redis, real Celery workers) and watch it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from mpls_celery.config.run_config import RunConfig
from mpls_celery.runtime.backend.connection import redis_client
from mpls_celery.runtime.launcher import UpRequest
from mpls_celery.runtime.options import RuntimeOptions
from mpls_celery.runtime.store import RunStore
from mpls_celery.runtime.up import run_up
from mpls_celery.runtime.worker.context import RunContext
from mpls_celery.runtime.worker.layout import layout_of, layout_to_json
from mpls_celery.runtime.worker.node import NodeRuntime
from mpls_celery.settings import Settings
from mpls_celery.telemetry.records import IterationRecord, Record, parse_record
from mpls_celery.telemetry.rundir import read_metrics
from mpls_celery.telemetry.states import WorkerState

SMALL = RunConfig().with_overrides(
    workers=3, model="mlp", dataset="digits", **{"topology.kind": "full", "training.lr": 0.1}
)


class RunningRun:
    def __init__(self, request: UpRequest) -> None:
        self.request = request
        self.summary: dict[str, Any] | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.summary = run_up(self.request, poll=0.3)
        except BaseException as exc:
            self.error = exc

    @property
    def store(self) -> RunStore:
        return RunStore(redis_client(self.request.redis_url or ""), self.request.run_id)

    @property
    def run_dir(self) -> Path:
        return self.request.settings.runs_dir / f"run-{self.request.run_id}"

    def records(self) -> list[Record]:
        """Everything the launcher wrote to metrics.jsonl (so far)."""
        return list(read_metrics(self.run_dir))

    def iterations(self) -> list[IterationRecord]:
        return [r for r in self.records() if isinstance(r, IterationRecord)]

    def wait_until(self, check: Callable[[], bool], timeout: float = 120, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.error:
                raise self.error
            try:
                if check():
                    return
            except Exception:
                pass
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what or check}")

    def join(self, timeout: float = 240) -> dict[str, Any]:
        self.thread.join(timeout)
        if self.error:
            raise self.error
        assert self.summary is not None, "run did not finish in time"
        return self.summary


def start_run(
    redis_url: str,
    tmp_path: Path,
    config: RunConfig = SMALL,
    local_workers: bool = True,
    **options: Any,
) -> RunningRun:
    settings = Settings(
        redis_url=redis_url, runs_dir=tmp_path / "runs", state_dir=tmp_path / "state"
    )
    opts = RuntimeOptions(**{"eval_every": 5, "eval_samples": 100, **options})
    request = UpRequest(config, opts, settings, redis_url, local_workers, eval_interval=2.0)
    run = RunningRun(request)
    run.thread.start()
    return run


def publish_all(ctx: RunContext) -> list[NodeRuntime]:
    nodes = [NodeRuntime(ctx, w).resume() for w in range(3)]
    for node in nodes:
        ctx.store.nodes.update(node.worker, state=WorkerState.IDLE)
    return nodes


def stream_records(store: RunStore, workers: int = 3) -> list[Record]:
    """What the workers wrote to their streams and no launcher drained yet, in server order."""
    entries = store.events.read({w: "0-0" for w in range(workers)}, count=100_000)
    return [parse_record(e.raw) for e in entries if e.raw is not None]


def make_context(
    client: redis.Redis,
    run_id: str,
    options: RuntimeOptions,
    config: RunConfig = SMALL,
    snapshot_url: str | None = None,
) -> RunContext:
    """A run created in Redis and its context, as a Celery process would load it."""
    store = RunStore(client, run_id, snapshot_url=snapshot_url)
    context = RunContext(store, config, options, [], time.time())
    exp = context.experiment
    context.layout = layout_of(exp.layers, exp.new_model().state_dict())
    store.run.create(
        {
            "run": config.model_dump(mode="json"),
            "options": {},
            "layout": layout_to_json(context.layout),
        }
    )
    return context
