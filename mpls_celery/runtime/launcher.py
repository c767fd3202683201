"""`mpls up`: find or start Redis, create the run, start local Celery workers, watch the run
(live view, periodic evaluation, a watchdog for lost slices), stop it, and write its run directory."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import redis
import torch

from mpls_celery.config.run_config import RunConfig
from mpls_celery.core.aggregate import average_states
from mpls_celery.core.training import evaluate
from mpls_celery.errors import RedisUnavailable, SnapshotError
from mpls_celery.experiment import Experiment, build_experiment
from mpls_celery.runtime.acl import create_users, credentials_path, delete_users
from mpls_celery.runtime.connection import check_reachable, redis_client, safe_url
from mpls_celery.runtime.embedded_redis import EmbeddedRedis
from mpls_celery.runtime.layout import Layout, layout_of, layout_to_json
from mpls_celery.runtime.local_workers import LocalWorkers
from mpls_celery.runtime.model_io import load_version
from mpls_celery.runtime.options import RuntimeOptions
from mpls_celery.runtime.private_files import write_private
from mpls_celery.runtime.redis_url import local_state_file, resolve_redis_url
from mpls_celery.runtime.store import RunStore
from mpls_celery.settings import Settings
from mpls_celery.telemetry.records import EvalRecord, IterationRecord
from mpls_celery.telemetry.rundir import (
    METRICS,
    SUMMARY,
    append_metrics,
    write_json,
    write_manifest,
)
from mpls_celery.telemetry.summary import summary_document

DONE_STATES = ("finished", "stopped")
WORKERS_EXITED = "local Celery worker processes kept exiting (see the run's logs/)"
log = logging.getLogger(__name__)


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


@dataclass
class UpRequest:
    config: RunConfig
    options: RuntimeOptions
    settings: Settings
    redis_url: str | None = None
    local_workers: bool = True
    concurrency: int | None = None
    run_id: str = field(default_factory=new_run_id)
    eval_interval: float = 5.0


@dataclass
class Snapshot:
    """What the live view shows after each poll."""

    run_id: str
    elapsed: float
    status: str
    nodes: list[dict[str, Any]]
    last_eval: EvalRecord | None


class Launcher:
    def __init__(self, request: UpRequest) -> None:
        self.req = request
        self.embedded: EmbeddedRedis | None = None
        self.workers: LocalWorkers | None = None
        self.exp: Experiment | None = None
        self.store: RunStore | None = None
        self.run_dir = request.settings.runs_dir / f"run-{request.run_id}"
        self._events_after = "0-0"
        self._last_eval: EvalRecord | None = None
        self._next_eval = 0.0
        self._watchdog: dict[int, float] = {}
        self._outage_since: float | None = None
        self._broker: Any = None
        self.layout: Layout = []
        self.redis_url = ""
        self.credentials_file: Path | None = None

    # start -------------------------------------------------------------------------------------
    def start(self) -> None:
        req = self.req
        self.exp = build_experiment(req.config, req.settings.data_dir)  # validates data first
        self.redis_url = self._redis()
        client = redis_client(self.redis_url, req.settings)
        self.store = RunStore(client, req.run_id)
        worker_env: dict[str, str] = {}
        worker_url = self.redis_url
        if req.options.secure:
            creds = create_users(client, self.redis_url, req.run_id, req.config.workers)
            self.credentials_file = creds.save(credentials_path(req.settings, req.run_id))
            worker_env["MPLS_CREDENTIALS_FILE"] = str(self.credentials_file)
            worker_url = creds.broker_url
        self.layout = layout_of(self.exp.layers, self.exp.new_model().state_dict())
        self.store.create(
            {
                "run": req.config.model_dump(mode="json"),
                "options": req.options.model_dump(mode="json"),
                "layout": layout_to_json(self.layout),
            }
        )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_manifest(
            self.run_dir,
            "runtime",
            req.config.model_dump(mode="json"),
            run_id=req.run_id,
            options=req.options.model_dump(mode="json"),
            redis_url=safe_url(self.redis_url),
        )
        if req.local_workers:
            n = req.config.workers
            self.workers = LocalWorkers(
                worker_url,
                self.run_dir / "logs",
                node_concurrency=req.concurrency or min(n, 32),
                pull_concurrency=max(4, min(2 * n, 64)),
                tag=req.run_id,
                extra_env=worker_env,
            ).start()
        self._write_state_file()
        for worker in range(req.config.workers):
            self.store.set_node_state(worker, state="queued", k=0)
            self._send_slice(worker, 0)
        self._started = time.monotonic()

    def _send_slice(self, worker: int, gen: int) -> None:
        """Through this run's own broker connection: never a process-wide app setting."""
        from mpls_celery.runtime.celery_app import app

        if self._broker is None:
            self._broker = app.connection_for_write(self.redis_url)
        per_worker = self.req.options.queue_mode == "per-worker"
        app.send_task(
            "mpls.node.slice",
            args=[self.req.run_id, worker, gen],
            queue=f"mpls.node.{worker}" if per_worker else "mpls.nodes",
            connection=self._broker,
            ignore_result=True,
        )

    def _redis(self) -> str:
        req = self.req
        url = resolve_redis_url(req.settings, req.redis_url)
        try:
            check_reachable(url, req.settings)
            return url
        except RedisUnavailable:
            if req.redis_url or req.settings.redis_url:
                raise  # the user named a Redis: do not silently use another one
        # a secure run must not leave a password-less default user beside its ACL users
        password = secrets.token_urlsafe(24) if req.options.secure else None
        self.embedded = EmbeddedRedis(
            data_dir=req.settings.state_dir / "redis", password=password
        ).start()
        return self.embedded.url

    def _write_state_file(self) -> None:
        path = local_state_file(self.req.settings)
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "redis_url": self.redis_url,
            "embedded": self.embedded is not None,
            "launcher_pid": os.getpid(),
            "run_id": self.req.run_id,
            "run_dir": str(self.run_dir.resolve()),
        }
        write_private(path, orjson.dumps(state))  # the Redis URL may carry a password

    # watch -------------------------------------------------------------------------------------
    def poll(self) -> Snapshot:
        assert self.store is not None
        n = self.req.config.workers
        nodes = self.store.node_states(range(n))
        if self._outage_since is not None:
            log.warning("Redis is back after %.1f s", time.monotonic() - self._outage_since)
            self._outage_since = None
        self._drain_events()
        elapsed = time.monotonic() - self._started
        if elapsed >= self._next_eval:
            self._evaluate(nodes, elapsed)
            self._next_eval = elapsed + self.req.eval_interval
        self._watch(nodes)
        return Snapshot(
            self.req.run_id, elapsed, self.store.status().get("state", "?"), nodes, self._last_eval
        )

    def should_stop(self, snap: Snapshot) -> str | None:
        opts = self.req.options
        if snap.status != "running":
            return f"run marked {snap.status}"
        if all(node.get("state") in DONE_STATES for node in snap.nodes):
            return "every worker finished"
        if opts.until_seconds is not None and snap.elapsed >= opts.until_seconds:
            return "time limit reached"
        if (
            opts.target_acc is not None
            and snap.last_eval
            and snap.last_eval.mean_acc >= opts.target_acc
        ):
            return "target accuracy reached"
        if self.workers is not None and not self.workers.revive():
            return WORKERS_EXITED
        return None

    def _drain_events(self) -> None:
        assert self.store is not None
        while True:
            records, self._events_after = self.store.read_events(self._events_after)
            iterations = [r for r in records if isinstance(r, IterationRecord)]
            append_metrics(self.run_dir / METRICS, iterations)
            if len(records) < 10_000:
                return

    def _watch(self, nodes: list[dict[str, Any]]) -> None:
        """Re-enqueue the slice of a worker whose process died (its message may sit unacked)."""
        assert self.store is not None
        opts, now = self.req.options, time.time()
        silent_for = 2 * opts.lease_seconds + opts.slice_seconds

        for worker, node in enumerate(nodes):
            if node.get("state") in DONE_STATES:
                continue
            patience = silent_for * (3 if node.get("state") == "queued" else 1)
            stale = now - float(node.get("heartbeat", now)) > patience
            recently = now - self._watchdog.get(worker, 0.0) < silent_for
            if stale and not recently and self.store.lease_ttl(worker) == 0:
                self._watchdog[worker] = now
                self._send_slice(worker, self.store.generation(worker))

    def _evaluate(
        self, nodes: list[dict[str, Any]], elapsed: float, full: bool = False
    ) -> EvalRecord | None:
        """Evaluate every worker's head: on its own test slice while running, on the whole test
        set at the end; plus the model averaged over all workers."""
        assert self.store is not None and self.exp is not None
        models = self._head_models()
        present = [m for m in models if m is not None]
        if not present:
            return None
        test = self.exp.data.test
        size = len(test) if full else min(self.req.options.eval_samples, len(test))
        worker_acc = []
        for worker, model in enumerate(models):
            idx = (worker * size + torch.arange(size)) % len(test)
            worker_acc.append(evaluate(model, test.x[idx], test.y[idx]).accuracy if model else 0.0)
        avg_acc = evaluate(self._averaged(present), test.x, test.y).accuracy
        losses = [float(n["loss"]) for n in nodes if n.get("loss") is not None]
        record = EvalRecord(
            algo=self.req.config.algorithm,
            t=round(elapsed, 3),
            epoch=int(sum(int(n.get("k", 0)) for n in nodes)),
            mean_acc=float(np.mean(worker_acc)),
            avg_model_acc=avg_acc,
            mean_loss=float(np.mean(losses)) if losses else 0.0,
            worker_acc=[round(a, 4) for a in worker_acc],
        )
        self.store.emit(record)
        append_metrics(self.run_dir / METRICS, [record])
        self._last_eval = record
        return record

    def _head_models(self) -> list[torch.nn.Module | None]:
        """Every worker's current head as a model (None where nothing readable is published)."""
        assert self.store is not None and self.exp is not None
        out: list[torch.nn.Module | None] = []
        for worker, head in enumerate(self.store.heads(list(range(self.req.config.workers)))):
            model = self.exp.new_model()
            try:
                if head is None:
                    raise SnapshotError(f"worker {worker} has published nothing")
                load_version(self.store, self.layout, self.exp.layers, worker, head.version, model)
            except SnapshotError:
                out.append(None)
                continue
            out.append(model)
        return out

    def _averaged(self, models: list[torch.nn.Module]) -> torch.nn.Module:
        assert self.exp is not None
        target = self.exp.new_model()
        target.load_state_dict(average_states([m.state_dict() for m in models]))
        return target

    def outage(self, exc: Exception) -> None:
        """Redis is unreachable: wait (workers pause too); the watchdog restarts lost slices."""
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            log.warning("Redis unreachable (%s); the run pauses until it is back", exc)

    # stop --------------------------------------------------------------------------------------
    def finish(self, reason: str, wait: float = 90.0) -> dict[str, Any]:
        assert self.store is not None
        store = self.store
        if store.status().get("state") == "running":
            store.set_status("stopping", reason=reason)
        deadline = time.monotonic() + wait
        nodes = store.node_states(range(self.req.config.workers))
        while time.monotonic() < deadline and not all(
            n.get("state") in (*DONE_STATES, "queued") for n in nodes
        ):
            time.sleep(0.5)
            nodes = store.node_states(range(self.req.config.workers))
        self._drain_events()
        final = self._evaluate(nodes, time.monotonic() - self._started, full=True)
        worker_acc = final.worker_acc if final else [0.0] * len(nodes)
        from mpls_celery.telemetry.rundir import read_metrics

        summary = summary_document(
            read_metrics(self.run_dir),
            self.req.options.target_acc,
            run_id=self.req.run_id,
            run_dir=str(self.run_dir.resolve()),
            reason=reason,
            wall_seconds=round(time.monotonic() - self._started, 2),
            workers=[
                {
                    "worker": w,
                    "iteration": int(n.get("k", 0)),
                    "state": n.get("state"),
                    "accuracy": worker_acc[w],
                }
                for w, n in enumerate(nodes)
            ],
            final_mean_acc=final.mean_acc if final else 0.0,
            final_avg_model_acc=final.avg_model_acc if final else 0.0,
        )
        write_json(self.run_dir / SUMMARY, summary)
        store.set_status("finished", finished=time.time(), reason=reason)
        store.expire(self.req.options.run_ttl)
        return summary

    def close(self) -> None:
        if self._broker is not None:
            self._broker.release()
        if self.workers is not None:
            self.workers.stop()
        if self.credentials_file is not None and self.store is not None:
            with contextlib.suppress(redis.exceptions.RedisError):  # the run's users end with it
                delete_users(self.store.r, self.req.run_id, self.req.config.workers)
            self.credentials_file.unlink(missing_ok=True)
        if self.embedded is not None:
            self.embedded.stop()
            local_state_file(self.req.settings).unlink(missing_ok=True)
        elif (state := local_state_file(self.req.settings)).exists():
            state.unlink(missing_ok=True)


def run_up(
    request: UpRequest, on_poll: Callable[[Snapshot], None] | None = None, poll: float = 0.5
) -> dict[str, Any]:
    launcher = Launcher(request)
    try:
        launcher.start()
        reason = "interrupted"
        try:
            while True:
                try:
                    snap = launcher.poll()
                except redis.exceptions.RedisError as exc:  # Redis went away: the run pauses
                    launcher.outage(exc)
                    time.sleep(max(poll, 1.0))
                    continue
                if on_poll:
                    on_poll(snap)
                stop = launcher.should_stop(snap)
                if stop:
                    reason = stop
                    break
                time.sleep(poll)
        except KeyboardInterrupt:
            reason = "interrupted (Ctrl-C)"
        return launcher.finish(reason)
    finally:
        launcher.close()
