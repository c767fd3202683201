"""`mpls up`: the launcher. Its one job is to compose the roles (launch/) for the life of a run —
create it (or re-attach to it: `--resume`), watch it, end it — and to hold the run's launcher
lease meanwhile. The roles: Redis supervision, Celery processes, the telemetry sink, evaluation,
the watchdog and dead-worker policy, the stop policy, the summary."""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass

import redis

from mpls_celery.config.run_config import RunConfig
from mpls_celery.errors import ConfigError, RunAborted
from mpls_celery.experiment import Experiment, build_experiment
from mpls_celery.runtime.backend.connection import redis_client
from mpls_celery.runtime.launch.attachment import LauncherLease
from mpls_celery.runtime.launch.evaluation import Evaluator
from mpls_celery.runtime.launch.local_runs import find
from mpls_celery.runtime.launch.processes import CeleryProcesses
from mpls_celery.runtime.launch.redis_supervisor import RedisSupervisor, refusal
from mpls_celery.runtime.launch.request import UpRequest, new_run_id
from mpls_celery.runtime.launch.run_setup import RunSetup
from mpls_celery.runtime.launch.sink import TelemetrySink
from mpls_celery.runtime.launch.stop_policy import WORKERS_EXITED, Stop, stop_reason
from mpls_celery.runtime.launch.summary import RunOutcome, write_summary
from mpls_celery.runtime.launch.watchdog import DeadWorkers, Watchdog
from mpls_celery.runtime.options import RuntimeOptions
from mpls_celery.runtime.state.decode import Refusals
from mpls_celery.runtime.store import RunStore
from mpls_celery.runtime.worker.layout import layout_from_json
from mpls_celery.telemetry.model_files import save_run_models
from mpls_celery.telemetry.records import EvalRecord
from mpls_celery.telemetry.states import NodeState, RunState, RunStatus, WorkerState

__all__ = ["Launcher", "Snapshot", "UpRequest", "new_run_id"]
log = logging.getLogger(__name__)
STOP_WAIT = 10.0  # seconds finish() waits for workers to stop (after SIGTERM/Ctrl-C too)
FREE_RESTARTS_AFTER_PAUSE = 30.0  # Celery exits this soon after an outage are not crashes


@dataclass
class Snapshot:
    """What the live view shows after each poll."""

    run_id: str
    elapsed: float
    status: RunStatus
    nodes: list[NodeState]
    last_eval: EvalRecord | None


class Launcher:
    def __init__(self, request: UpRequest) -> None:
        self.req = request
        settings, opts = request.settings, request.options
        self.redis = RedisSupervisor(
            settings, request.redis_url, request.run_id, opts.resource_wait
        )
        self.refusals = Refusals()
        self.setup = RunSetup(request.run_id, settings, settings.runs_dir / f"run-{request.run_id}")
        self._started = time.monotonic()
        self._next_eval = 0.0
        self._last_eval: EvalRecord | None = None
        self._nodes: list[NodeState] = []
        self.resumed: list[float] = []
        self.processes: CeleryProcesses | None = None  # started (or adopted) by _begin
        self.lease: LauncherLease | None = None

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._started

    # start, or re-attach -----------------------------------------------------------------------
    def start(self) -> None:
        req = self.req
        self.setup.check_config(req.config)
        exp = build_experiment(req.config, req.settings.data_dir)  # validates data first
        url = self.redis.start(req.options.secure)
        store = self.setup.open(redis_client(url, req.settings), url)
        self.setup.create(exp, req)
        self._begin(store, exp)
        for worker in range(req.config.workers):
            store.nodes.update(worker, state=WorkerState.QUEUED, k=0)
            self.slices.send(worker, 0)

    def attach(self) -> None:
        """Re-attach to a run whose launcher died: its Redis, config and run directory."""
        req, settings = self.req, self.req.settings
        local = find(settings, req.run_id)
        if req.redis_url is None and local is None:
            raise ConfigError(
                f"no run {req.run_id!r} started on this machine; pass --redis URL to resume a "
                "run whose launcher was elsewhere"
            )
        url = self.redis.adopt(local) if req.redis_url is None and local else req.redis_url or ""
        store = self.setup.open(redis_client(url, settings), url)
        doc = store.run.config()
        config = RunConfig.model_validate(doc["run"])
        options = RuntimeOptions.model_validate(doc["options"])
        started_here = local.local_workers if local else req.local_workers
        self.req = dataclasses.replace(
            req, config=config, options=options, redis_url=url, local_workers=started_here
        )
        self.redis.url, self.redis.resource_wait = url, options.resource_wait
        status = store.run.status()
        if status.state is RunState.FINISHED:
            raise ConfigError(f"run {req.run_id} has finished already ({status.reason})")
        self.setup.adopt(layout_from_json(doc["layout"]), local)
        self._started = time.monotonic() - (time.time() - (status.started or time.time()))
        self.resumed.append(round(self.elapsed, 1))
        log.warning("re-attached to run %s at %.0f s", req.run_id, self.elapsed)
        self._begin(store, build_experiment(config, settings.data_dir))

    def _begin(self, store: RunStore, exp: Experiment) -> None:
        req, setup = self.req, self.setup
        self.store, self.exp = store, exp
        self.lease = lease = LauncherLease(store)
        lease.attach()
        self.redis.on_restart = setup.restore_users
        opts = req.options
        self.evaluator = Evaluator(store, exp, setup.layout, opts.eval_samples, self.refusals)
        self.sink = TelemetrySink(store, setup.run_dir, setup.bounds(exp), self.refusals).resume()
        self.slices = setup.slice_sender(opts)
        self.processes = setup.start_processes(req, self.redis) if req.local_workers else None
        self.watchdog = Watchdog(store, opts, self.slices.send)
        self.dead = DeadWorkers(store, opts, attached=time.time())
        setup.register(self.redis, self.processes)

    # watch -------------------------------------------------------------------------------------
    def poll(self) -> Snapshot:
        elapsed, store = self.elapsed, self.store
        assert self.lease is not None
        self.lease.renew()
        nodes = store.nodes.states(range(self.req.config.workers))
        self.redis.back(elapsed)
        own: list[EvalRecord] = []
        if elapsed >= self._next_eval:
            record = self.evaluator.evaluate(elapsed, nodes)
            own, self._last_eval = ([record], record) if record else ([], self._last_eval)
            self._next_eval = elapsed + self.req.eval_interval
        self.sink.drain(own)
        self.dead.check(nodes, elapsed, self.redis.since_pause(elapsed))
        self.watchdog.check(nodes)
        self.setup.report(self.processes, self._refused(nodes))
        self._nodes = nodes
        return Snapshot(self.req.run_id, elapsed, store.run.status(), nodes, self._last_eval)

    def should_stop(self, snap: Snapshot) -> Stop | None:
        stop = stop_reason(
            snap.status,
            snap.nodes,
            snap.elapsed,
            self.req.options,
            snap.last_eval,
            bool(self.dead.dead),
        )
        free = self.redis.since_pause(snap.elapsed) < FREE_RESTARTS_AFTER_PAUSE
        if stop is None and self.processes is not None and not self.processes.revive(free):
            return Stop(WORKERS_EXITED, failed=True)
        return stop

    def outage(self, exc: Exception) -> None:
        """Redis failed a poll: pause (RunAborted when it cannot come back, or refuses writes
        for longer than resource_wait)."""
        self.redis.outage(exc, self.elapsed)
        if self.processes is not None:
            self.processes.revive(free=True)

    # stop --------------------------------------------------------------------------------------
    def finish(self, stop: Stop, wait: float = STOP_WAIT) -> dict[str, object]:
        """Ask every worker to stop, wait for them (bounded), evaluate, write the averaged model
        and the summary. Without Redis the summary is written from the run directory alone."""
        final, states = None, []
        try:
            self._wind_down(stop, wait)
            states = self.evaluator.head_states()
            final = self.evaluator.evaluate(self.elapsed, self._nodes, full=True, states=states)
            self.sink.drain([final] if final else [])
        except redis.exceptions.RedisError as exc:
            why = "refused writes" if refusal(exc) else "unreachable"
            log.warning("Redis %s while finishing (%s); summary from the run dir", why, exc)
            stop = Stop(f"{stop.reason}; Redis {why} at the end", stop.failed)
        except RunAborted as exc:
            stop = stop.also(str(exc))
        config = self.req.config
        try:
            save_run_models(self.setup.run_dir, config.algorithm, states,
                            config.model_dump(mode="json"), self.req.options.save_workers)  # fmt: skip
        except OSError as exc:  # a full disk: the run's result is its metrics and this model
            stop = stop.also(f"the averaged model was not written ({exc.strerror or exc})")
        summary = write_summary(self._outcome(stop, final))
        try:
            self.store.run.set_status(RunState.FINISHED, finished=time.time(), reason=stop.reason)
            self.store.run.expire(self.req.options.run_ttl, self.req.config.workers)
        except redis.exceptions.RedisError:
            pass
        return summary

    def _wind_down(self, stop: Stop, wait: float) -> None:
        store, n = self.store, self.req.config.workers
        if store.run.running():
            store.run.set_status(RunState.STOPPING, reason=stop.reason)
        deadline = time.monotonic() + wait
        settled = (WorkerState.QUEUED, WorkerState.DEAD, WorkerState.FAILED)
        nodes = store.nodes.states(range(n))
        while time.monotonic() < deadline and not all(x.done or x.state in settled for x in nodes):
            time.sleep(0.5)
            nodes = store.nodes.states(range(n))
        self._nodes = nodes

    def _outcome(self, stop: Stop, final: EvalRecord | None) -> RunOutcome:
        return RunOutcome(
            self.req.run_id, self.setup.run_dir, self.req.config.workers,
            self.req.options.target_acc, stop, self.elapsed, self._nodes, final,
            dict(self.dead.dead),
            [p.document() for p in self.redis.pauses], self._refused(self._nodes), self.resumed,
            self.processes.restarts if self.processes else 0,
        )  # fmt: skip

    def _refused(self, nodes: list[NodeState]) -> dict[str, object]:
        counts = dict(self.refusals.counts)
        by_workers = sum(n.refused for n in nodes)
        node_fields = self.store.nodes.refused
        extra = {"read by workers": by_workers, "node state fields": node_fields}
        return {
            **self.refusals.document(),
            "counts": counts | {k: v for k, v in extra.items() if v},
        }

    def close(self) -> None:
        self.setup.close(self.redis, self.processes, self.lease)
