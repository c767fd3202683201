"""Probed link speeds on a real Redis: a probe reads the peer's blob, workers take turns in worker
order whatever order they arrive in, a worker that never comes delays the others only until the
deadline, and probed estimates do not move with what pulls achieve."""

from __future__ import annotations

import threading
import time

import redis

from mpls_celery.core.links import blend_speeds
from mpls_celery.runtime.network import MeasuredNetwork
from mpls_celery.runtime.probes import (
    DONE,
    PROBE_BYTES,
    Probe,
    offer,
    probe_at_start,
    probe_peer,
    probe_state,
)
from mpls_celery.runtime.store import RunStore


def test_a_probe_reads_the_peers_blob_and_a_peer_without_one_gives_none(ctx):
    offer(ctx.store, 1)
    probe = probe_peer(ctx.store, 1)
    assert probe is not None and probe.peer == 1 and probe.nbytes == PROBE_BYTES
    assert probe.seconds > 0 and probe.rate == PROBE_BYTES / probe.seconds
    assert probe_peer(ctx.store, 2) is None


def test_workers_probe_in_turn_in_worker_order_whatever_order_they_arrive_in(ctx, redis_url):
    got: dict[int, list[Probe]] = {}

    def worker(w: int) -> None:
        store = RunStore(redis.Redis.from_url(redis_url), ctx.store.run_id)
        offer(store, w)
        peers = [p for p in range(3) if p != w]
        got[w] = probe_at_start(store, w, 3, peers, time.time() + 30)

    threads = [threading.Thread(target=worker, args=(w,)) for w in (2, 1, 0)]
    for t in threads:
        t.start()
        time.sleep(0.2)  # worker 2 is ready long before worker 0
    for t in threads:
        t.join(40)
    assert {w: sorted(p.peer for p in got[w]) for w in got} == {0: [1, 2], 1: [0, 2], 2: [0, 1]}
    windows = [(min(p.started for p in got[w]), max(p.started for p in got[w])) for w in range(3)]
    assert windows[0][1] < windows[1][0] and windows[1][1] < windows[2][0], windows
    assert all(probe_state(ctx.store, w) == DONE for w in range(3))


def test_a_worker_that_never_comes_holds_the_others_only_until_the_deadline(ctx):
    offer(ctx.store, 0)
    offer(ctx.store, 2)  # worker 1 never starts
    began = time.monotonic()
    probes = probe_at_start(ctx.store, 2, 3, [0, 1], time.time() + 1.0)
    assert 0.9 < time.monotonic() - began < 5
    assert [p.peer for p in probes] == [0]


def test_probed_estimates_stay_and_achieved_ones_follow_the_pulls():
    known, measured = {1: 8e6}, {1: 2e6}
    assert MeasuredNetwork(probes=True).estimates(known, measured) is None
    assert MeasuredNetwork(probes=False).estimates(known, measured) == blend_speeds(known, measured)
