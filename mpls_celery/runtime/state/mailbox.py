"""A worker's pull mailbox: the aggregation task leaves its result there and the worker waits on
it with a deadline. It lives where the worker's snapshots live (its host's Redis)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

import redis

from mpls_celery.runtime.keys import RunKeys

# KEYS: the result, its ready list. Taken and deleted at once: a result is read by one wait only,
# and a late one is never applied to a later wait (a slice that redoes iteration k after a kill)
_TAKE = """
local fields = redis.call('HGETALL', KEYS[1])
if #fields > 0 then redis.call('DEL', KEYS[1], KEYS[2]) end
return fields"""


class Mailbox:
    def __init__(self, keys: RunKeys, client_of: Callable[[int], redis.Redis]) -> None:
        """`client_of(worker)`: the Redis that holds that worker's snapshots."""
        self._keys, self._client_of = keys, client_of

    def put(self, worker: int, k: int, fields: Mapping[str, bytes], ttl: float) -> None:
        """Into the puller's mailbox, which lives where its snapshots live (its host's Redis)."""
        key = self._keys.pull(worker, k)
        ready = self._keys.pull_ready(worker, k)
        pipe = self._client_of(worker).pipeline()
        pipe.delete(key)
        pipe.hset(key, mapping=dict(fields))  # type: ignore[arg-type]
        pipe.pexpire(key, int(ttl * 1000))
        pipe.delete(ready)
        pipe.rpush(ready, b"1")
        pipe.pexpire(ready, int(ttl * 1000))
        pipe.execute()

    def wait(
        self, worker: int, k: int, timeout: float, stop: threading.Event | None = None
    ) -> dict[str, bytes] | None:
        """Block on a Redis list (never on AsyncResult.get) until the result or the deadline. The
        wait goes in chunks shorter than the clients' socket timeout, which a longer BLPOP would
        hit (and fail the slice) on any slow link; `stop` set ends it (None) before the next
        chunk, so a wait its node gave up takes no result a redone iteration waits for."""
        mailbox = self._client_of(worker)
        ready = self._keys.pull_ready(worker, k)
        result = self._keys.pull(worker, k)
        deadline = time.monotonic() + timeout
        chunk = 0.4 * (mailbox.connection_pool.connection_kwargs.get("socket_timeout") or 5.0)
        while stop is None or not stop.is_set():
            remaining = deadline - time.monotonic()
            pipe = mailbox.pipeline(transaction=False)
            pipe.blpop([ready], timeout=min(max(remaining, 0.01), chunk))
            pipe.eval(_TAKE, 2, result, ready)  # in the same round trip as the wait
            flat = pipe.execute()[-1]
            if flat or remaining <= chunk:
                return {flat[i].decode(): flat[i + 1] for i in range(0, len(flat), 2)} or None
        return None
