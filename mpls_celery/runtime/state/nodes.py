"""What each worker says about itself (its state hash, typed as NodeState), the link speeds it
plans with, and its slice generation. Reads validate: a field that is not what it claims is
dropped and counted (`refused`), never a crash."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Unpack

import redis

from mpls_celery.runtime.keys import RunKeys, slice_queue
from mpls_celery.runtime.state.decode import decode_links
from mpls_celery.runtime.state.replies import hash_of, text
from mpls_celery.telemetry.states import NodeFields, NodeState, encode_fields

# k is JSON in the hash ("5"); compared as written
_COUNT_FAILURE = (
    "local k = redis.call('HGET', KEYS[1], 'k') or '0' "
    "if redis.call('HGET', KEYS[1], 'failed_at') == k then "
    "return {k, redis.call('HINCRBY', KEYS[1], 'failures', 1)} end "
    "redis.call('HSET', KEYS[1], 'failed_at', k, 'failures', 1) return {k, 1}"
)
_ADVANCE = (
    "if tonumber(redis.call('GET', KEYS[1]) or '0') == tonumber(ARGV[1]) then "
    "redis.call('SET', KEYS[1], ARGV[1] + 1) return 1 end return 0"
)


class NodeStore:
    def __init__(self, client: redis.Redis, keys: RunKeys) -> None:
        self._r, self.keys = client, keys
        self.refused = 0  # state fields refused by this reader (the launcher reports them)

    # state hashes ----------------------------------------------------------------------------
    def update(self, worker: int, beat: bool = True, **fields: Unpack[NodeFields]) -> None:
        """Set some fields; `beat`: also refresh the heartbeat (False when someone else writes
        about a worker, as the launcher declaring it dead)."""
        mapping = encode_fields(fields, time.time() if beat else None)
        if mapping:
            self._r.hset(self.keys.state(worker), mapping=mapping)  # type: ignore[arg-type]

    def states(self, workers: Iterable[int]) -> list[NodeState]:
        """One round trip; a hash of the wrong Redis type reads as empty (and is counted)."""
        ids = list(workers)
        pipe = self._r.pipeline(transaction=False)
        for w in ids:
            pipe.hgetall(self.keys.state(w))
        return [self._decode(raw) for raw in pipe.execute(raise_on_error=False)]

    def state(self, worker: int) -> NodeState:
        return self.states([worker])[0]

    def _decode(self, raw: object) -> NodeState:
        if not isinstance(raw, dict):
            self.refused += 1
            return NodeState()
        state, refused = NodeState.from_fields(raw)
        self.refused += len(refused)
        return state

    def peers_and_links(
        self, worker: int, peers: Iterable[int]
    ) -> tuple[list[NodeState], dict[int, float]]:
        """Peers' states and this worker's link estimates in one round trip."""
        ids = list(peers)
        pipe = self._r.pipeline(transaction=False)
        for w in ids:
            pipe.hgetall(self.keys.state(w))
        pipe.hgetall(self.keys.links(worker))
        *raw, links = pipe.execute(raise_on_error=False)
        return [self._decode(h) for h in raw], decode_links(
            links if isinstance(links, dict) else {}
        )

    def count_failure(self, worker: int) -> tuple[int, int]:
        """A slice of `worker` failed: (the iteration it was at, how many slices in a row failed
        there). A slice that got further starts the count again."""
        k, failures = self._r.eval(_COUNT_FAILURE, 1, self.keys.state(worker))
        return int(k), int(failures)

    def count_refused(self, worker: int, n: int = 1) -> None:
        """A worker counts what it read and refused in its own hash (its own keys only)."""
        self._r.hincrby(self.keys.state(worker), "refused", n)

    # link speeds -----------------------------------------------------------------------------
    def links(self, worker: int) -> dict[int, float]:
        return decode_links(hash_of(self._r.hgetall(self.keys.links(worker))))

    # slices ----------------------------------------------------------------------------------
    def generation(self, worker: int) -> int:
        raw = self._r.get(self.keys.generation(worker))
        try:
            return int(text(raw)) if raw is not None else 0
        except ValueError:
            return 0

    def advance_generation(self, worker: int, expected: int) -> bool:
        return bool(self._r.eval(_ADVANCE, 1, self.keys.generation(worker), expected))

    def slice_waiting(self, worker: int) -> bool:
        """A slice of this worker waits in its own queue (per-worker queues: kombu keeps a
        queue's messages in a list named after it)."""
        return bool(self._r.llen(slice_queue(worker, True)))
