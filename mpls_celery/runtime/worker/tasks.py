"""Celery task boundary. Tasks are at-least-once (acks late) and idempotent; the only catch-all of
the package lives here, and it logs.

  mpls.node.slice(run, worker, gen)       a bounded run of worker's local iterations, then its
                                          continuation (gen + 1); a lease keeps one slice per worker
  mpls.pull.aggregate(PullRequest JSON)   fetch the planned layers, store sums and counts

A slice that cannot go on for a reason that will not pass by itself (out of memory, a run config
it cannot load, training that diverged) says so in the worker's state (`failed`, with the error)
and ends its chain; the launcher ends the run with that line. Anything else is logged and the
chain goes on from Redis — until `MAX_FAILED_SLICES` slices in a row fail at one iteration: an
error that repeats there will not pass either (one that is Redis's own, while it is down or
refuses writes, cannot be counted: the run pauses instead)."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections import OrderedDict
from functools import partial
from pathlib import Path
from typing import Any

import redis
import torch

from mpls_celery.core.divergence import Diverged
from mpls_celery.errors import ConfigError, InvalidState, StaleNode, one_line
from mpls_celery.runtime.backend.acl import Credentials, load_credentials
from mpls_celery.runtime.backend.celery_app import app
from mpls_celery.runtime.keys import PING_TASK, PULL_TASK, SLICE_TASK, pull_queue, slice_queue
from mpls_celery.runtime.state.leases import LeaseKeeper, Renewal, acquire, lease_token
from mpls_celery.runtime.store import RunStore
from mpls_celery.runtime.worker.context import RunContext, open_context
from mpls_celery.runtime.worker.messages import PullRequest
from mpls_celery.runtime.worker.node import NodeRuntime
from mpls_celery.runtime.worker.pull import run_aggregation
from mpls_celery.settings import load_settings
from mpls_celery.telemetry.states import WorkerState

log = logging.getLogger(__name__)
_CONTEXTS: dict[tuple[str, int | None], RunContext] = {}
_CREDENTIALS: dict[str, Credentials] = {}
_NODES: OrderedDict[tuple[str, int], NodeRuntime] = OrderedDict()
MAX_CACHED_NODES = 16
_THREAD = threading.local()  # a planner thread's own broker producer
# Errors that will not pass by themselves: the worker fails (and the launcher ends the run).
PERMANENT = (MemoryError, torch.OutOfMemoryError, ConfigError, Diverged)
MAX_FAILED_SLICES = 3


@app.task(name=PING_TASK)
def ping(payload: str = "pong") -> dict[str, object]:
    """Liveness probe: proves a worker consumes `mpls.nodes` and returns JSON."""
    return {"payload": payload, "host": socket.gethostname(), "pid": os.getpid()}


def _context(run_id: str, worker: int) -> RunContext:
    """A secure run's tasks act for `worker` with its own Redis user; others share the broker's.
    Settings and credentials are read on a cache miss only, never per task."""
    creds = _CREDENTIALS.get(run_id)
    ctx = _CONTEXTS.get((run_id, worker if creds else None))
    if ctx is not None:
        return ctx
    settings = load_settings()
    creds = _credentials(run_id, settings.credentials_file)
    key = (run_id, worker if creds else None)
    if key not in _CONTEXTS:
        url = creds.worker_url(worker) if creds else app.conf.broker_url
        _CONTEXTS[key] = open_context(url, run_id, settings)
    return _CONTEXTS[key]


def _credentials(run_id: str, path: Path | None) -> Credentials | None:
    """Found credentials are kept; a miss is read again next time (the file may come later)."""
    if path is None:
        return None
    creds = load_credentials(path)
    if creds.run_id != run_id:
        return None
    _CREDENTIALS[run_id] = creds
    return creds


def _node(ctx: RunContext, worker: int) -> NodeRuntime:
    """The process-local node, reused while it is still at the worker's head version. The state
    names this process first (nothing else writes pid or host), before any repair or write."""
    ctx.store.nodes.update(worker, pid=os.getpid(), host=socket.gethostname())
    key = (ctx.store.run_id, worker)
    node = _NODES.get(key)
    try:
        head = ctx.store.snapshots.head(worker) if node is not None else None
    except InvalidState:  # resume() refuses and repairs it
        head = None
    if node is None or head is None or node.version != head.version:
        _forget(key)
        node = NodeRuntime(ctx, worker).resume()
        _NODES[key] = node
    _NODES.move_to_end(key)
    while len(_NODES) > MAX_CACHED_NODES:
        _forget(next(iter(_NODES)))
    return node


def _forget(key: tuple[str, int]) -> None:
    """Drop a cached node (its publisher thread ends with it)."""
    node = _NODES.pop(key, None)
    if node is not None:
        node.close()


def enqueue_slice(ctx: RunContext, worker: int, gen: int, countdown: float = 0.0) -> None:
    node_slice.apply_async(
        args=[ctx.store.run_id, worker, gen],
        queue=slice_queue(worker, ctx.options.per_worker_queues),
        countdown=countdown,
    )


@app.task(name=SLICE_TASK, bind=True, max_retries=None, ignore_result=True)
def node_slice(self: Any, run_id: str, worker: int, gen: int) -> dict[str, object]:
    try:
        ctx = _context(run_id, worker)
    except ConfigError as exc:  # the run's config in Redis cannot be loaded: it never will be
        log.error("slice of worker %s in run %s cannot start: %s", worker, run_id, exc)
        _fail_without_context(run_id, worker, str(exc))
        return {"failed": str(exc)}
    store, opts = ctx.store, ctx.options
    if not store.run.running():
        store.nodes.update(worker, state=WorkerState.STOPPED)
        return {"stopped": True}
    if store.nodes.generation(worker) != gen:
        return {"stale": True}
    token = lease_token(self.request.id)
    if not acquire(store.leases, worker, token, opts.lease_seconds):
        raise self.retry(countdown=store.leases.ttl(worker) + 0.5)
    iterations, ended = 0, None
    with LeaseKeeper(store.leases, worker, token, opts.lease_seconds) as lease:
        try:
            node = _node(ctx, worker)  # loads data on a process's first slice: under the lease
            budget_end = time.monotonic() + opts.slice_seconds

            enqueue_pull = partial(send_pull, queue=pull_queue(worker, opts.per_worker_queues))
            while time.monotonic() < budget_end:
                if node.finished:
                    break
                renewal = lease.check()
                if renewal is Renewal.RUN_STOPPED:
                    ended = WorkerState.STOPPED
                    break
                if renewal is Renewal.LOST:
                    _forget((run_id, worker))  # another slice runs: nothing more from this one
                    return {"lease_lost": True, "iterations": iterations}
                node.iteration(enqueue_pull)
                iterations += 1
            node.flush()  # every write of this slice is out before its lease is given back
            if node.finished:
                ended = WorkerState.FINISHED
        except StaleNode:
            _forget((run_id, worker))
        except PERMANENT as exc:
            _forget((run_id, worker))
            return _fail(store, worker, _failure(exc))
        except Exception as exc:  # the task boundary: log, keep the worker's chain alive
            log.exception(
                "slice of worker %s in run %s failed; it will resume from Redis", worker, run_id
            )
            _forget((run_id, worker))
            repeated = _repeated_failure(store, worker, exc)
            if repeated is not None:
                return _fail(store, worker, repeated)
    if ended:
        store.nodes.update(worker, state=ended)
        return {"ended": str(ended), "iterations": iterations}
    if store.nodes.advance_generation(worker, gen):
        enqueue_slice(ctx, worker, gen + 1)
    return {"iterations": iterations, "next_gen": gen + 1}


def send_pull(request: PullRequest, deadline: float, queue: str) -> None:
    """Ask for a node's pull (from its planner's thread, with that thread's own producer)."""
    aggregate.apply_async(
        args=[request.to_json()], queue=queue, expires=deadline, producer=_own_producer()
    )


def _own_producer() -> Any:
    """The calling thread's own broker producer: a node asks for its pulls from its planner's
    thread, and Celery's shared producer pool is not safe across threads (celery#4480). It
    lives as long as the thread."""
    producer = getattr(_THREAD, "producer", None)
    if producer is None:
        producer = _THREAD.producer = app.amqp.Producer(app.connection_for_write())
    return producer


def _fail(store: RunStore, worker: int, error: str) -> dict[str, object]:
    """The worker's state says it failed, and why; its chain ends (the launcher ends the run)."""
    log.error("worker %s in run %s failed: %s", worker, store.run_id, error)
    store.nodes.update(worker, state=WorkerState.FAILED, error=error)
    return {"failed": error}


def _failure(exc: BaseException) -> str:
    """One line: what ran out (or what is wrong) and where."""
    if isinstance(exc, torch.OutOfMemoryError):
        return f"out of GPU memory {_where()}: {str(exc).splitlines()[0][:200]}"
    if isinstance(exc, MemoryError):
        return f"out of host memory {_where()}"
    return f"{exc} ({_where()})"


def _where() -> str:
    return f"on host {socket.gethostname()} (pid {os.getpid()})"


def _repeated_failure(store: RunStore, worker: int, exc: Exception) -> str | None:
    """The worker's error once its slices keep failing at one iteration, else None."""
    try:
        k, failures = store.nodes.count_failure(worker)
    except redis.exceptions.RedisError:  # Redis itself fails: a pause, not the worker's error
        return None
    if failures < MAX_FAILED_SLICES:
        return None
    return f"{failures} slices in a row failed at iteration {k}: {one_line(exc)} ({_where()})"


def _fail_without_context(run_id: str, worker: int, error: str) -> None:
    """Say so in the worker's state, through a store opened without the run's config."""
    from mpls_celery.runtime.backend.connection import redis_client

    settings = load_settings()
    try:
        creds = _credentials(run_id, settings.credentials_file)
        url = creds.worker_url(worker) if creds else app.conf.broker_url
        store = RunStore(redis_client(url, settings), run_id)
        store.nodes.update(worker, state=WorkerState.FAILED, error=error)
    except (redis.exceptions.RedisError, ConfigError) as exc:
        log.error("could not report worker %s's failure: %s", worker, exc)


@app.task(name=PULL_TASK, ignore_result=True)  # the result travels via Redis keys
def aggregate(message: dict[str, Any]) -> None:
    request = PullRequest.from_json(message)
    ctx = _context(request.run_id, request.worker)
    with contextlib.suppress(InvalidState):  # its own slice refuses and repairs it
        head = ctx.store.snapshots.head(request.worker)
        if head is not None and head.version > request.k:  # the iteration it was for is over
            return
    try:
        run_aggregation(ctx.store, ctx.layout, request)
    except Exception:
        log.exception("aggregation for worker %s iteration %s failed", request.worker, request.k)
        raise
