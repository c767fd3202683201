"""`mpls up`: find or start Redis, create the run, start local Celery workers, watch the run
(live view, periodic evaluation, a watchdog for lost slices), stop it, and write its run directory."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import secrets
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import redis

from mpls_celery.config.run_config import RunConfig
from mpls_celery.errors import RedisUnavailable, RunAborted
from mpls_celery.experiment import Experiment, build_experiment
from mpls_celery.runtime.acl import (
    Credentials,
    create_users,
    credentials_path,
    delete_users,
    restore_users,
)
from mpls_celery.runtime.connection import check_reachable, redis_client, safe_url
from mpls_celery.runtime.embedded_redis import EmbeddedRedis
from mpls_celery.runtime.evaluator import Evaluator
from mpls_celery.runtime.keys import slice_queue
from mpls_celery.runtime.layout import Layout, layout_of, layout_to_json
from mpls_celery.runtime.leases import holder_is_dead
from mpls_celery.runtime.local_runs import LocalRun, register, unregister
from mpls_celery.runtime.local_workers import LocalWorkers
from mpls_celery.runtime.options import RuntimeOptions
from mpls_celery.runtime.redis_url import resolve_redis_url
from mpls_celery.runtime.store import RunStore
from mpls_celery.runtime.telemetry_sink import TelemetrySink
from mpls_celery.settings import Settings
from mpls_celery.telemetry.records import EvalRecord
from mpls_celery.telemetry.rundir import (
    METRICS,
    SUMMARY,
    write_json,
    write_manifest,
)
from mpls_celery.telemetry.summary import summary_document
from mpls_celery.telemetry.trace import build_trace, write_trace

DONE_STATES = ("finished", "stopped")
WORKERS_EXITED = "local Celery worker processes kept exiting (see the run's logs/)"
REDIS_LOST = "its embedded Redis died and could not be restarted"
# Reasons that mean the run did not end as asked: the summary is written, the exit status is 1.
FAILED_REASONS = (WORKERS_EXITED, REDIS_LOST)
STOP_WAIT = 10.0  # seconds finish() waits for workers to stop (after SIGTERM/Ctrl-C too)
QUIET = 1.0  # a worker silent for less than this is working: the watchdog does not look closer


class Terminated(Exception):
    """SIGTERM (timeout, systemd, docker stop): end the run like Ctrl-C."""


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
        self.evaluator: Evaluator | None = None
        self.run_dir = request.settings.runs_dir / f"run-{request.run_id}"
        self.sink: TelemetrySink | None = None
        self._last_eval: EvalRecord | None = None
        self._next_eval = 0.0
        self._watchdog: dict[int, float] = {}
        self._dead: dict[int, float] = {}  # worker → run time when it was declared dead
        self._outage_since: float | None = None
        self._redis_back_at = -math.inf
        self._broker: Any = None
        self._started = time.monotonic()
        self._nodes: list[dict[str, Any]] = []
        self.layout: Layout = []
        self.redis_url = ""
        self.credentials: Credentials | None = None
        self.credentials_file: Path | None = None

    # start -------------------------------------------------------------------------------------
    def start(self) -> None:
        req = self.req
        self.exp = build_experiment(req.config, req.settings.data_dir)  # validates data first
        self.redis_url = self._redis()
        client = redis_client(self.redis_url, req.settings)
        self.store = RunStore(client, req.run_id)
        self.sink = TelemetrySink(self.store, self.run_dir)
        worker_env: dict[str, str] = {}
        worker_url = self.redis_url
        if req.options.secure:
            self.credentials = create_users(client, self.redis_url, req.run_id, req.config.workers)
            self.credentials_file = self.credentials.save(
                credentials_path(req.settings, req.run_id)
            )
            worker_env["MPLS_CREDENTIALS_FILE"] = str(self.credentials_file)
            worker_url = self.credentials.broker_url
        self.layout = layout_of(self.exp.layers, self.exp.new_model().state_dict())
        self.evaluator = Evaluator(self.store, self.exp, self.layout, req.options.eval_samples)
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
            eval_interval=req.eval_interval,
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
        self._register()
        for worker in range(req.config.workers):
            self.store.set_node_state(worker, state="queued", k=0)
            self._send_slice(worker, 0)
        self._started = time.monotonic()

    def _register(self) -> None:
        """This run's file for `mpls status/runs/down/tui` (and chaos tests: the Redis pid)."""
        register(
            self.req.settings,
            LocalRun(
                run_id=self.req.run_id,
                redis_url=self.redis_url,
                launcher_pid=os.getpid(),
                run_dir=str(self.run_dir.resolve()),
                embedded=self.embedded is not None,
                redis_pid=self.embedded.pid if self.embedded else None,
                started=time.time(),
            ),
        )

    def _send_slice(self, worker: int, gen: int) -> None:
        """Through this run's own broker connection: never a process-wide app setting."""
        from mpls_celery.runtime.celery_app import app

        if self._broker is None:
            self._broker = app.connection_for_write(self.redis_url)
        app.send_task(
            "mpls.node.slice",
            args=[self.req.run_id, worker, gen],
            queue=slice_queue(worker, self.req.options.per_worker_queues),
            connection=self._broker,
            ignore_result=True,
        )

    def _redis(self) -> str:
        """The Redis named by flag or environment, else one on the default port, else a server
        of this run's own (never another local run's: it may end before this one)."""
        req = self.req
        url = resolve_redis_url(req.settings, req.redis_url, local=False)
        try:
            check_reachable(url, req.settings)
            return url
        except RedisUnavailable:
            if req.redis_url or req.settings.redis_url:
                raise  # the user named a Redis: do not silently use another one
        # a secure run must not leave a password-less default user beside its ACL users
        password = secrets.token_urlsafe(24) if req.options.secure else None
        self.embedded = EmbeddedRedis(
            data_dir=req.settings.state_dir / "redis" / req.run_id,
            password=password,
            appendonly=True,  # a restart after a crash loses no published version
        ).start()
        return self.embedded.url

    # watch -------------------------------------------------------------------------------------
    def poll(self) -> Snapshot:
        assert self.store is not None and self.sink is not None
        n = self.req.config.workers
        nodes = self.store.node_states(range(n))
        if self._outage_since is not None:
            log.warning("Redis is back after %.1f s", time.monotonic() - self._outage_since)
            self._outage_since = None
            self._redis_back_at = time.monotonic()
        self.sink.drain()
        elapsed = time.monotonic() - self._started
        self._mark_dead(nodes, elapsed)
        if elapsed >= self._next_eval:
            self._evaluate(nodes, elapsed)
            self._next_eval = elapsed + self.req.eval_interval
        self._watch(nodes)
        self._nodes = nodes
        return Snapshot(
            self.req.run_id, elapsed, self.store.status().get("state", "?"), nodes, self._last_eval
        )

    def should_stop(self, snap: Snapshot) -> str | None:
        opts = self.req.options
        if snap.status != "running":
            return f"run marked {snap.status}"
        states = [node.get("state") for node in snap.nodes]
        alive = [s for s in states if s != "dead"]
        if len(alive) < opts.min_workers:
            return f"only {len(alive)} workers alive (fewer than --min-workers {opts.min_workers})"
        if all(s in DONE_STATES for s in alive):
            return "every worker finished" if not self._dead else "every live worker finished"
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

    def _silent(self, node: dict[str, Any], now: float, seconds: float) -> bool:
        return now - float(node.get("heartbeat", now)) > seconds

    def _watch(self, nodes: list[dict[str, Any]]) -> None:
        """Re-send the slice of a worker whose slice died: no heartbeat and nobody holds its
        lease (a live slice renews it all the time). Its old message may sit unacked for the
        broker's visibility timeout; the generation counter makes whichever runs second a no-op.
        A dead worker keeps one slice waiting in its queue, never a pile, for when it returns."""
        assert self.store is not None
        opts, now = self.req.options, time.time()
        for worker, node in enumerate(nodes):
            if node.get("state") in DONE_STATES:
                continue
            patience = opts.lease_seconds * (3 if node.get("state") == "queued" else 1) + 1.0
            recently = now - self._watchdog.get(worker, 0.0) < patience
            if recently or not self._silent(node, now, QUIET):  # the common case: no Redis call
                continue
            holder = self.store.leases.holder(worker)
            if holder is not None and holder_is_dead(holder):  # a process of this host died
                self.store.leases.release(worker, holder)
            elif not self._silent(node, now, patience) or self.store.leases.ttl(worker) > 0:
                continue
            if self._slice_waiting(worker):
                continue
            self._watchdog[worker] = now
            self._send_slice(worker, self.store.generation(worker))

    def _slice_waiting(self, worker: int) -> bool:
        """A slice of this worker already waits in its own queue (per-worker queues only: a
        shared queue is served by every live host, so nothing piles up there)."""
        assert self.store is not None
        if not self.req.options.per_worker_queues:
            return False
        return bool(self.store.r.llen(slice_queue(worker, True)))

    def _mark_dead(self, nodes: list[dict[str, Any]], elapsed: float) -> None:
        """A worker silent for dead_after seconds with nobody holding its lease is dead (its host
        is gone): shown as such and no longer waited for. It comes back to life by itself if its
        host returns (its own state update replaces 'dead'). Nobody is declared dead until Redis
        has been back for dead_after seconds: during an outage every worker is silent."""
        assert self.store is not None
        opts, now = self.req.options, time.time()
        if time.monotonic() - self._redis_back_at < opts.dead_seconds:
            return
        for worker, node in enumerate(nodes):
            state = node.get("state")
            if state == "dead" or state in DONE_STATES:
                continue
            if worker in self._dead:  # it was dead and reported again
                log.warning("worker %s is alive again", worker)
                del self._dead[worker]
            if self._silent(node, now, opts.dead_seconds) and self.store.leases.ttl(worker) == 0:
                self._dead[worker] = round(elapsed, 1)
                node["state"] = "dead"
                self.store.set_node_state(
                    worker, beat=False, state="dead", dead_since=round(elapsed, 1)
                )
                log.warning("worker %s declared dead: silent for %.0f s", worker, opts.dead_seconds)

    def _evaluate(
        self, nodes: list[dict[str, Any]], elapsed: float, full: bool = False
    ) -> EvalRecord | None:
        assert self.store is not None and self.evaluator is not None
        losses = [float(n["loss"]) for n in nodes if n.get("loss") is not None]
        record = self.evaluator.evaluate(
            elapsed,
            epoch=int(sum(int(n.get("k", 0)) for n in nodes)),
            mean_loss=float(np.mean(losses)) if losses else 0.0,
            full=full,
        )
        if record is None:
            return None
        self.store.emit(record)  # the sink writes it to metrics.jsonl with the rest
        self._last_eval = record
        return record

    def outage(self, exc: Exception) -> None:
        """Redis is unreachable: wait (workers pause too), and restart the embedded server if it
        is ours and has died (from its AOF); RunAborted when that fails."""
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            log.warning("Redis unreachable (%s); the run pauses until it is back", exc)
        if self.embedded is None or self.embedded.alive():
            return
        log.warning("the embedded Redis (pid %s) has exited; restarting it", self.embedded.pid)
        try:
            self.embedded.restart()
        except (RedisUnavailable, OSError) as failure:
            raise RunAborted(f"{REDIS_LOST}: {failure}") from None
        if self.credentials is not None and self.store is not None:
            restore_users(self.store.r, self.credentials)  # ACL users are not in the AOF
        self._register()

    # stop --------------------------------------------------------------------------------------
    def finish(self, reason: str, wait: float = STOP_WAIT) -> dict[str, Any]:
        """Ask every worker to stop, wait for them (bounded), evaluate, and write the summary.
        Without Redis the summary is written from the run directory alone."""
        try:
            return self._finish(reason, wait)
        except redis.exceptions.RedisError as exc:
            log.warning("Redis unreachable while finishing (%s); summary from the run dir", exc)
            return self._summary(f"{reason}; Redis unreachable at the end", self._nodes, None)

    def _finish(self, reason: str, wait: float) -> dict[str, Any]:
        assert self.store is not None and self.sink is not None
        store = self.store
        if store.status().get("state") == "running":
            store.set_status("stopping", reason=reason)
        deadline = time.monotonic() + wait
        nodes = store.node_states(range(self.req.config.workers))
        while time.monotonic() < deadline and not all(
            n.get("state") in (*DONE_STATES, "queued", "dead") for n in nodes
        ):
            time.sleep(0.5)
            nodes = store.node_states(range(self.req.config.workers))
        final = self._evaluate(nodes, time.monotonic() - self._started, full=True)
        self.sink.drain()
        summary = self._summary(reason, nodes, final)
        store.set_status("finished", finished=time.time(), reason=reason)
        store.expire(self.req.options.run_ttl)
        return summary

    def _summary(
        self, reason: str, nodes: list[dict[str, Any]], final: EvalRecord | None
    ) -> dict[str, Any]:
        from mpls_celery.telemetry.rundir import read_metrics

        n = self.req.config.workers
        nodes = nodes or [{} for _ in range(n)]
        worker_acc: list[float | None] = final.worker_acc if final else [None] * n
        records = list(read_metrics(self.run_dir)) if (self.run_dir / METRICS).exists() else []
        summary = summary_document(
            records,
            self.req.options.target_acc,
            run_id=self.req.run_id,
            run_dir=str(self.run_dir.resolve()),
            reason=reason,
            failed=reason.startswith(FAILED_REASONS),
            wall_seconds=round(time.monotonic() - self._started, 2),
            workers=[
                {
                    "worker": w,
                    "iteration": int(node.get("k", 0)),
                    "state": node.get("state"),
                    "accuracy": worker_acc[w],
                    "recovered": node.get("recovered"),
                }
                for w, node in enumerate(nodes)
            ],
            dead=[{"worker": w, "since": t} for w, t in sorted(self._dead.items())],
            final_mean_acc=final.mean_acc if final else None,
            final_avg_model_acc=final.avg_model_acc if final else None,
        )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_json(self.run_dir / SUMMARY, summary)
        if records:
            write_trace(self.run_dir, build_trace(records, n))
        return summary

    def close(self) -> None:
        if self._broker is not None:
            with contextlib.suppress(Exception):  # a dead broker cannot be released cleanly
                self._broker.release()
        if self.workers is not None:
            self.workers.stop()
        if self.credentials is not None and self.store is not None:
            with contextlib.suppress(redis.exceptions.RedisError):  # the run's users end with it
                delete_users(self.store.r, self.req.run_id, self.req.config.workers)
        if self.credentials_file is not None:
            self.credentials_file.unlink(missing_ok=True)
        if self.embedded is not None:
            self.embedded.stop()
            if self.embedded.data_dir is not None:
                shutil.rmtree(self.embedded.data_dir, ignore_errors=True)
        unregister(self.req.settings, self.req.run_id)


def run_up(
    request: UpRequest, on_poll: Callable[[Snapshot], None] | None = None, poll: float = 0.5
) -> dict[str, Any]:
    launcher = Launcher(request)
    with _terminate_on_sigterm():
        try:
            launcher.start()
            return launcher.finish(_watch_until_done(launcher, on_poll, poll))
        finally:
            launcher.close()


def _watch_until_done(
    launcher: Launcher, on_poll: Callable[[Snapshot], None] | None, poll: float
) -> str:
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
                return stop
            time.sleep(poll)
    except RunAborted as exc:
        log.error("%s", exc)
        return str(exc)
    except KeyboardInterrupt:
        return "interrupted (Ctrl-C)"
    except Terminated:
        return "terminated (SIGTERM)"


@contextlib.contextmanager
def _terminate_on_sigterm() -> Iterator[None]:
    """SIGTERM ends the run like Ctrl-C: stop workers, write the summary (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_terminated(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends at once
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
