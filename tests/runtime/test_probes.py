"""Probed link speeds on a real Redis: a probe reads the peer's blob, workers take turns in worker
order whatever order they arrive in, a worker that never comes delays the others only until the
deadline, and probed estimates do not move with what pulls achieve."""

from __future__ import annotations

import threading
import time

import redis

from mpls_celery.core.link_model import blend_speeds
from mpls_celery.runtime.store import RunStore
from mpls_celery.runtime.worker.emulation import MeasuredNetwork
from mpls_celery.runtime.worker.probes import (
    PROBE_BYTES,
    Probe,
    offer,
    probe_at_start,
    probe_peer,
    probe_rounds,
    probe_stage,
)
from mpls_celery.telemetry.states import ProbeStage


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
    assert all(probe_stage(ctx.store, w) is ProbeStage.DONE for w in range(3))


def test_a_worker_that_never_comes_holds_the_others_only_until_the_deadline(ctx):
    offer(ctx.store, 0)
    offer(ctx.store, 2)  # worker 1 never starts
    began = time.monotonic()
    probes = probe_at_start(ctx.store, 2, 3, [0, 1], time.time() + 1.0)
    assert time.monotonic() - began > 0.9  # it waited for worker 1 until the deadline, no more
    assert [p.peer for p in probes] == [0]


def test_probe_rounds_keep_every_link_to_one_transfer_at_a_time():
    """Six workers on three hosts (where their snapshots live): three rounds. In each, every
    host reads from exactly one host and is read by exactly one — no link carries two probes —
    and over the rounds every worker probes every peer exactly once."""
    hosts = ["a", "a", "b", "b", "c", "c"]
    everyone = range(6)
    rounds = {w: probe_rounds(w, hosts, [p for p in everyone if p != w]) for w in everyone}
    assert all(len(r) == 3 for r in rounds.values())
    for w in everyone:
        probed = [p for r in rounds[w] for p in r]
        assert sorted(probed) == [p for p in everyone if p != w]
    for r in range(3):
        sources = {hosts[w]: {hosts[p] for p in rounds[w][r]} for w in everyone if rounds[w][r]}
        assert all(len(s) == 1 for s in sources.values())  # one source host per reader host
        read = [next(iter(s)) for s in sources.values()]
        assert len(read) == len(set(read))  # and each source host read by one reader host
    assert probe_rounds(0, ["", "", None], [1, 2]) == [[1]]  # one place; worker 2 never offered


def test_probed_estimates_stay_and_achieved_ones_follow_the_pulls():
    known, measured = {1: 8e6}, {1: 2e6}
    assert MeasuredNetwork(probes=True).estimates(known, measured) is None
    assert MeasuredNetwork(probes=False).estimates(known, measured) == blend_speeds(known, measured)
