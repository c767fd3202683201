"""Link speeds as the spec means them (step 1's B_s: what a link carries), not a pull's share of
a busy link: before its first pull, each worker times one read of a fixed-size blob from every
neighbour's snapshot store. Workers probe in turn (worker order) and none goes on to pull until
every worker has probed, or `probe_wait` has passed since the run started, so no probe shares a
link with another transfer of the run. A peer first seen later is probed when it appears.

No lock key: each worker says where it stands in its own state hash (`probe`: offered, done),
so a --secure run's workers, which may write only their own keys, take turns too."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

import redis

from mpls_celery.runtime.store import RunStore

# Big enough that bytes, not the round trip, decide the time (twice the smallest transfer a pull
# counts as a measurement), small enough that thirty probes at 4 Mbit/s take seconds.
PROBE_BYTES = 128 * 1024
# A read this short is noise-bound (a fast local link): read again and keep the fastest.
QUICK_READS_SECONDS, MAX_READS = 0.05, 5
POLL_SECONDS = 0.05
OFFERED, DONE = "offered", "done"


@dataclass(frozen=True)
class Probe:
    peer: int
    nbytes: int
    seconds: float  # the read, less one round trip
    started: float  # unix s

    @property
    def rate(self) -> float:
        return self.nbytes / self.seconds


def offer(store: RunStore, worker: int) -> None:
    """Put the worker's probe blob beside its snapshots (random bytes: what crosses the link is
    PROBE_BYTES whatever the codec) and say so, unless it has probed already."""
    store.put_probe_blob(worker, os.urandom(PROBE_BYTES))
    if probe_state(store, worker) != DONE:
        store.set_node_state(worker, probe=OFFERED)


def probe_state(store: RunStore, worker: int) -> str | None:
    state = store.node_states([worker])[0].get("probe")
    return None if state is None else str(state)


def probe_peer(store: RunStore, peer: int) -> Probe | None:
    """A timed read of the peer's blob (the fastest of a few when reads are quick), less the
    round trip of a PING on the same, already open connection; None when the peer offers no
    blob or its store cannot be reached."""
    client = store.snapshot_client(peer)
    key = store.keys.node(peer, "probe")
    reads: list[float] = []
    size = 0
    try:
        client.ping()  # opens the connection: its handshake is not the link's speed
        begin = time.perf_counter()
        client.ping()
        rtt = time.perf_counter() - begin
        started = time.time()
        while not reads or (len(reads) < MAX_READS and sum(reads) < QUICK_READS_SECONDS):
            begin = time.perf_counter()
            blob = client.get(key)
            reads.append(time.perf_counter() - begin)
            if not isinstance(blob, bytes) or not blob:
                return None
            size = len(blob)
    except redis.exceptions.RedisError:
        return None
    return Probe(peer, size, max(min(reads) - rtt, 1e-6), started)


def probe_at_start(
    store: RunStore, worker: int, workers: int, peers: Sequence[int], deadline: float
) -> list[Probe]:
    """Wait for every worker's blob, then for the workers before this one to finish; probe each
    peer; then wait for everyone to finish. Each wait ends at `deadline` (unix s) at the latest."""
    everyone = list(range(workers))
    _wait_until(store, worker, everyone, (OFFERED, DONE), deadline)
    _wait_until(store, worker, everyone[:worker], (DONE,), deadline)
    probes = [p for p in (probe_peer(store, peer) for peer in peers) if p is not None]
    store.set_node_state(worker, probe=DONE)
    _wait_until(store, worker, everyone, (DONE,), deadline)
    return probes


def _wait_until(
    store: RunStore, worker: int, others: list[int], states: tuple[str, ...], deadline: float
) -> None:
    """Poll the others' probe states; keep this worker's heartbeat fresh meanwhile."""
    beat = 0.0
    while others and time.time() < deadline:
        if all(s.get("probe") in states for s in store.node_states(others)):
            return
        if time.monotonic() - beat > 1.0:
            store.set_node_state(worker)
            beat = time.monotonic()
        time.sleep(POLL_SECONDS)
