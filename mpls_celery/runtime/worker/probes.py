"""Link speeds as docs/algorithm.md, "Link speeds" means them (B_s is what a link
carries), not a pull's share of a busy link: before its first pull, each worker times one read of
a fixed-size blob from every neighbour's snapshot store, with no other transfer of the run on
that link. A peer first seen later is probed when it appears.

Probes run in rounds over *locations* (where a worker's snapshots live: its host's snapshot
Redis, or the central one). In round 0 each location's workers probe their peers at the same
location; in round d ≥ 1 the workers at location A probe their peers at the location d places
after A. Within a round a location's workers take turns in worker order (they share its link),
while different locations probe at once: their transfers share no link. So N workers on m hosts
take m rounds, not N turns; on one host (every snapshot central) it is N turns, on loopback.
Every wait ends at `deadline` (`probe_wait` after the run started) at the latest.

No lock key: each worker says where it stands in its own state hash (`probe`, `probe_round`), so
a --secure run's workers, which may write only their own keys, take turns too."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import redis

from mpls_celery.runtime.store import RunStore
from mpls_celery.telemetry.states import NodeState, ProbeStage

# Big enough that bytes, not the round trip, decide the time (twice the smallest transfer a pull
# counts as a measurement), small enough that thirty probes at 4 Mbit/s take seconds.
PROBE_BYTES = 128 * 1024
# A read this short is noise-bound (a fast local link): read again and keep the fastest.
QUICK_READS_SECONDS, MAX_READS = 0.05, 5
# The round trip taken off a read is the fastest of a few PINGs: one PING that waited for a busy
# core would be subtracted whole, and a 3.75 Mbit/s link probed as 5 (seen with both cores busy).
RTT_PINGS = 3
POLL_SECONDS = 0.05
BEAT_SECONDS = 1.0


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
    PROBE_BYTES whatever the codec) and say where it is, unless it has probed already."""
    store.snapshots.put_probe_blob(worker, os.urandom(PROBE_BYTES))
    if store.nodes.state(worker).probe is not ProbeStage.DONE:
        store.nodes.update(worker, probe=ProbeStage.OFFERED, store=store.snapshots.snapshot_url)


def probe_peer(store: RunStore, peer: int) -> Probe | None:
    """A timed read of the peer's blob (the fastest of a few when reads are quick), less the
    fastest round trip of a few PINGs on the same, already open connection; None when the peer
    offers no blob or its store cannot be reached."""
    reads: list[float] = []
    size = 0
    try:
        client, key = store.snapshots.read_probe_blob(peer)
        client.ping()  # opens the connection: its handshake is not the link's speed
        rtt = min(_timed_ping(client) for _ in range(RTT_PINGS))
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


def _timed_ping(client: redis.Redis) -> float:
    begin = time.perf_counter()
    client.ping()
    return time.perf_counter() - begin


def probe_rounds(
    worker: int, locations: Sequence[str | None], peers: Sequence[int]
) -> list[list[int]]:
    """The peers `worker` probes in each round (`locations[w]`: where worker w's snapshots
    live; workers without one — not offered — are left out)."""
    places = sorted({loc for loc in locations if loc is not None})
    mine = places.index(locations[worker] or "")
    rounds = []
    for d in range(len(places)):
        source = places[(mine + d) % len(places)]
        rounds.append([p for p in peers if locations[p] == source])
    return rounds


def probe_at_start(
    store: RunStore, worker: int, workers: int, peers: Sequence[int], deadline: float
) -> list[Probe]:
    """Wait for every worker's blob, then probe round by round (see the module docstring); then
    wait for everyone to finish. Each wait ends at `deadline` (unix s) at the latest."""
    everyone = list(range(workers))
    states = _wait_until(store, worker, everyone, lambda s: s.probe is not None, deadline)
    located = [s.store if s.probe is not None else None for s in states]
    located[worker] = store.snapshots.snapshot_url
    here = [w for w in everyone if located[w] == located[worker]]
    before = here[: here.index(worker)]
    offered = [w for w in everyone if located[w] is not None]
    probes: list[Probe] = []
    for r, round_peers in enumerate(probe_rounds(worker, located, peers)):
        _wait_until(store, worker, offered, _finished(r - 1), deadline)  # everyone's last round
        _wait_until(store, worker, before, _finished(r), deadline)  # this location's turn
        probes += [p for p in (probe_peer(store, peer) for peer in round_peers) if p is not None]
        store.nodes.update(worker, probe_round=r)
    store.nodes.update(worker, probe=ProbeStage.DONE)
    _wait_until(store, worker, everyone, lambda s: s.probe is ProbeStage.DONE, deadline)
    return probes


def _finished(round_: int) -> Callable[[NodeState], bool]:
    def check(state: NodeState) -> bool:
        done = state.probe is ProbeStage.DONE
        return round_ < 0 or done or (state.probe_round is not None and state.probe_round >= round_)

    return check


def probe_stage(store: RunStore, worker: int) -> ProbeStage | None:
    return store.nodes.state(worker).probe


def _wait_until(
    store: RunStore,
    worker: int,
    others: list[int],
    ready: Callable[[NodeState], bool],
    deadline: float,
) -> list[NodeState]:
    """Poll the others' states until all are `ready` (or the deadline); keep this worker's
    heartbeat fresh meanwhile. The states last read (all workers' when `others` is everyone)."""
    beat, states = 0.0, store.nodes.states(others)
    while others and time.time() < deadline and not all(ready(s) for s in states):
        if time.monotonic() - beat > BEAT_SECONDS:
            store.nodes.update(worker)
            beat = time.monotonic()
        time.sleep(POLL_SECONDS)
        states = store.nodes.states(others)
    return states
