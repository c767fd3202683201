"""Celery task boundary. Tasks are at-least-once (acks late) and idempotent; the only catch-all of
the package lives here, and it logs.

  mpls.node.slice(run, worker, gen)       a bounded run of worker's local iterations, then its
                                          continuation (gen + 1); a lease keeps one slice per worker
  mpls.pull.aggregate(PullRequest JSON)   fetch the planned layers, store sums and counts
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from mpls_celery.errors import StaleNode
from mpls_celery.runtime.acl import Credentials, load_credentials
from mpls_celery.runtime.aggregation import run_aggregation
from mpls_celery.runtime.celery_app import app
from mpls_celery.runtime.context import RunContext, open_context
from mpls_celery.runtime.keys import pull_queue, slice_queue
from mpls_celery.runtime.leases import LeaseKeeper, acquire, lease_token
from mpls_celery.runtime.messages import PullRequest
from mpls_celery.runtime.node import NodeRuntime
from mpls_celery.settings import load_settings

log = logging.getLogger(__name__)
_CONTEXTS: dict[tuple[str, int | None], RunContext] = {}
_CREDENTIALS: dict[str, Credentials] = {}
_NODES: OrderedDict[tuple[str, int], NodeRuntime] = OrderedDict()
MAX_CACHED_NODES = 16


@app.task(name="mpls.ping")
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
    """The process-local node, reused while it is still at the worker's head version."""
    key = (ctx.store.run_id, worker)
    node = _NODES.get(key)
    head = ctx.store.head(worker)
    if node is None or head is None or node.version != head.version:
        node = NodeRuntime(ctx, worker).resume()
        _NODES[key] = node
    _NODES.move_to_end(key)
    while len(_NODES) > MAX_CACHED_NODES:
        _NODES.popitem(last=False)
    return node


def enqueue_slice(ctx: RunContext, worker: int, gen: int, countdown: float = 0.0) -> None:
    node_slice.apply_async(
        args=[ctx.store.run_id, worker, gen],
        queue=slice_queue(worker, ctx.options.per_worker_queues),
        countdown=countdown,
    )


@app.task(name="mpls.node.slice", bind=True, max_retries=None, ignore_result=True)
def node_slice(self: Any, run_id: str, worker: int, gen: int) -> dict[str, object]:
    ctx = _context(run_id, worker)
    store, opts = ctx.store, ctx.options
    if store.status().get("state") != "running":
        store.set_node_state(worker, state="stopped")
        return {"stopped": True}
    if store.generation(worker) != gen:
        return {"stale": True}
    token = lease_token(self.request.id)
    if not acquire(store.leases, worker, token, opts.lease_seconds):
        raise self.retry(countdown=store.leases.ttl(worker) + 0.5)
    iterations, ended = 0, None
    with LeaseKeeper(store.leases, worker, token, opts.lease_seconds) as lease:
        try:
            node = _node(ctx, worker)  # loads data on a process's first slice: under the lease
            budget_end = time.monotonic() + opts.slice_seconds

            def enqueue_pull(request: PullRequest, deadline: float) -> None:
                aggregate.apply_async(
                    args=[request.to_json()],
                    queue=pull_queue(worker, ctx.options.per_worker_queues),
                    expires=deadline,
                )

            while time.monotonic() < budget_end:
                if node.finished:
                    break
                if store.status().get("state") != "running":
                    ended = "stopped"
                    break
                if lease.lost.is_set() or not store.leases.renew(worker, token, opts.lease_seconds):
                    return {"lease_lost": True, "iterations": iterations}  # another slice runs
                node.iteration(enqueue_pull)
                iterations += 1
            if node.finished:
                ended = "finished"
        except StaleNode:
            _NODES.pop((run_id, worker), None)
        except Exception:  # the task boundary: log, keep the worker's chain alive
            log.exception(
                "slice of worker %s in run %s failed; it will resume from Redis", worker, run_id
            )
            _NODES.pop((run_id, worker), None)
    if ended:
        store.set_node_state(worker, state=ended)
        return {"ended": ended, "iterations": iterations}
    if store.advance_generation(worker, gen):
        enqueue_slice(ctx, worker, gen + 1)
    return {"iterations": iterations, "next_gen": gen + 1}


@app.task(name="mpls.pull.aggregate", ignore_result=True)  # the result travels via Redis keys
def aggregate(message: dict[str, Any]) -> None:
    request = PullRequest.from_json(message)
    ctx = _context(request.run_id, request.worker)
    head = ctx.store.head(request.worker)
    if head is not None and head.version > request.k:  # the iteration it was for is over
        return
    try:
        run_aggregation(ctx.store, ctx.layout, request, ctx.config.compression)
    except Exception:
        log.exception("aggregation for worker %s iteration %s failed", request.worker, request.k)
        raise
