"""The launcher's watch over workers: a slice that died is sent again, and a worker whose host is
gone is declared dead — but never during start-up, which at scale takes minutes on a few cores
(every slice process loads its data and model, and the link probes run before the first pull):
a worker that has not finished its first iteration is given `start_timeout` instead."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from mpls_celery.runtime.options import RuntimeOptions
from mpls_celery.runtime.state.leases import holder_is_dead
from mpls_celery.runtime.store import RunStore
from mpls_celery.telemetry.states import NodeState, WorkerState

log = logging.getLogger(__name__)
QUIET = 1.0  # a worker silent for less than this is working: the watchdog does not look closer
SendSlice = Callable[[int, int], None]  # worker, generation


class Watchdog:
    """Re-send the slice of a worker whose slice died: no heartbeat and nobody holds its lease
    (a live slice renews it all the time). Its old message may sit unacked for the broker's
    visibility timeout; the generation counter makes whichever runs second a no-op. A dead
    worker keeps one slice waiting in its queue, never a pile, for when it returns."""

    def __init__(self, store: RunStore, options: RuntimeOptions, send: SendSlice) -> None:
        self.store, self.options, self.send = store, options, send
        self._sent: dict[int, float] = {}

    def check(self, nodes: Sequence[NodeState]) -> None:
        opts, now = self.options, time.time()
        for worker, node in enumerate(nodes):
            if node.done or node.state is WorkerState.FAILED:
                continue
            queued = node.state in (WorkerState.QUEUED, None)
            patience = opts.lease_seconds * (3 if queued else 1) + 1.0
            recently = now - self._sent.get(worker, 0.0) < patience
            if recently or not _silent(node, now, QUIET):  # the common case: no Redis call
                continue
            holder = self.store.leases.holder(worker)
            if holder is not None and holder_is_dead(holder):  # a process of this host died
                self.store.leases.release(worker, holder)
            elif not _silent(node, now, patience) or self.store.leases.ttl(worker) > 0:
                continue
            if opts.per_worker_queues and self.store.nodes.slice_waiting(worker):
                continue
            self._sent[worker] = now
            self.send(worker, self.store.nodes.generation(worker))


class DeadWorkers:
    """A worker silent for `dead_after` with nobody holding its lease is dead (its host is
    gone): shown as such and no longer waited for. It comes back to life by itself if its host
    returns (its own state update replaces 'dead'). Nobody is declared dead while Redis has not
    been back for that long (during an outage every worker is silent), nor during start-up."""

    def __init__(self, store: RunStore, options: RuntimeOptions, attached: float) -> None:
        """`attached`: unix s the launcher began watching (a run's start, or a re-attach)."""
        self.store, self.options, self.attached = store, options, attached
        self.dead: dict[int, float] = {}  # worker → run time when it was declared dead

    def check(self, nodes: list[NodeState], elapsed: float, since_outage: float) -> None:
        opts, now = self.options, time.time()
        if since_outage < opts.dead_seconds:
            return
        for worker, node in enumerate(nodes):
            if node.state in (WorkerState.DEAD, WorkerState.FAILED) or node.done:
                continue
            if worker in self.dead:  # it was dead and reported again
                log.warning("worker %s is alive again", worker)
                del self.dead[worker]
            starting = node.k == 0
            if starting and now - self.attached < opts.start_seconds:
                continue
            patience = opts.start_seconds if starting else opts.dead_seconds
            if _silent(node, now, patience) and self.store.leases.ttl(worker) == 0:
                self.dead[worker] = round(elapsed, 1)
                nodes[worker] = node.with_state(WorkerState.DEAD)
                self.store.nodes.update(
                    worker, beat=False, state=WorkerState.DEAD, dead_since=round(elapsed, 1)
                )
                log.warning("worker %s declared dead: silent for %.0f s", worker, patience)


def _silent(node: NodeState, now: float, seconds: float) -> bool:
    """Silent for longer than `seconds` (a worker that never beat counts as just heard)."""
    silence = node.silent_for(now)
    return silence is not None and silence > seconds
