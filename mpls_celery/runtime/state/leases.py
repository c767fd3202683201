"""The lease that keeps exactly one slice per worker alive. It is renewed by a thread while the
slice runs, so it can be short: a holder that dies is replaced within one lease period — at once
when the holder was a process on this host that no longer exists (a killed Celery child whose
task Celery has already redelivered). Before each iteration a slice asks the keeper whether the
run still runs and the lease is still its own (`LeaseKeeper.check`): the keeper's answer when it
is fresh, else one round trip then and there."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable
from enum import Enum
from types import TracebackType

import redis

from mpls_celery.runtime.backend.pids import process_exists
from mpls_celery.runtime.keys import RunKeys
from mpls_celery.runtime.state.lifecycle import says_running
from mpls_celery.runtime.state.replies import text

_RENEW = "if redis.call('GET', KEYS[1]) == ARGV[1] then " \
         "return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"  # fmt: skip
CHECK_PERIOD = 0.25  # s between the keeper's checks (at most a third of the lease)


class Renewal(Enum):
    RENEWED = 1
    LOST = 0  # another slice holds the lease
    RUN_STOPPED = -1  # the run no longer runs (a lease still its own is renewed all the same)


class Leases:
    def __init__(self, client: redis.Redis, keys: RunKeys) -> None:
        self._r, self._keys = client, keys

    def acquire(self, worker: int, token: str, seconds: float) -> bool:
        key = self._keys.lease(worker)
        if self._r.set(key, token, nx=True, px=int(seconds * 1000)):
            return True
        return self.renew(worker, token, seconds)

    def renew(self, worker: int, token: str, seconds: float) -> bool:
        key = self._keys.lease(worker)
        return bool(self._r.eval(_RENEW, 1, key, token, int(seconds * 1000)))

    def renew_and_check(self, worker: int, token: str, seconds: float) -> Renewal:
        """Renew the lease if it is still `token`'s, and say whether the run still runs: one
        round trip. (Not one script: a --secure worker may only read the run's status, and a
        script needs write access to every key it is given.)"""
        pipe = self._r.pipeline(transaction=False)
        pipe.hget(self._keys.status, "state")
        pipe.eval(_RENEW, 1, self._keys.lease(worker), token, int(seconds * 1000))
        state, renewed = pipe.execute()
        if not says_running(state):
            return Renewal.RUN_STOPPED
        return Renewal.RENEWED if renewed else Renewal.LOST

    def release(self, worker: int, token: str) -> None:
        script = "if redis.call('GET', KEYS[1]) == ARGV[1] then " \
                 "return redis.call('DEL', KEYS[1]) end return 0"  # fmt: skip
        self._r.eval(script, 1, self._keys.lease(worker), token)

    def holder(self, worker: int) -> str | None:
        raw = self._r.get(self._keys.lease(worker))
        return None if raw is None else text(raw)

    def take_over(self, worker: int, holder: str, token: str, seconds: float) -> bool:
        """Replace a lease whose holder is known to be dead (compare-and-set on the holder)."""
        script = "if redis.call('GET', KEYS[1]) == ARGV[1] then " \
                 "redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 end return 0"  # fmt: skip
        key = self._keys.lease(worker)
        return bool(self._r.eval(script, 1, key, holder, token, int(seconds * 1000)))

    def ttl(self, worker: int) -> float:
        ms = self._r.pttl(self._keys.lease(worker))
        return max(ms, 0) / 1000


def lease_token(task_id: str) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{task_id}"


def holder_is_dead(holder: str) -> bool:
    """True only when the holder is a process of this host that is gone (or a zombie)."""
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    return pid != os.getpid() and not process_exists(pid)


def acquire(leases: Leases, worker: int, token: str, seconds: float) -> bool:
    if leases.acquire(worker, token, seconds):
        return True
    holder = leases.holder(worker)
    return (
        holder is not None
        and holder_is_dead(holder)
        and leases.take_over(worker, holder, token, seconds)
    )


class LeaseKeeper:
    """Renews the lease, and checks that the run still runs, every CHECK_PERIOD (a third of the
    lease at most) until the block ends. `check` gives the slice that answer before each
    iteration without a round trip of its own: asked on the slice's path (two calls until then),
    it waited behind the publisher's writes — 0.54 ms at one worker, a tenth of a LeNet-5 step."""

    def __init__(
        self,
        leases: Leases,
        worker: int,
        token: str,
        seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.leases, self.worker, self.token, self.seconds = leases, worker, token, seconds
        self.period = min(CHECK_PERIOD, seconds / 3)
        self.lost = threading.Event()
        self._clock = clock
        self._answer: tuple[float, Renewal] = (-float("inf"), Renewal.RENEWED)  # (asked at, …)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, daemon=True, name="mpls-lease")

    def check(self) -> Renewal:
        """The keeper's last answer if it was asked within two periods, else asked now. An
        answer that recent renewed the lease for longer than two periods, so the lease is still
        this slice's: no iteration starts on a lost lease, as when every iteration asked. After
        a freeze (every thread stopped) the answer is stale, and asked again."""
        if self.lost.is_set():
            return Renewal.LOST
        asked_at, answer = self._answer
        if self._clock() - asked_at <= 2 * self.period:
            return answer
        return self._ask()

    def _ask(self) -> Renewal:
        asked_at = self._clock()
        answer = self.leases.renew_and_check(self.worker, self.token, self.seconds)
        self._answer = (asked_at, answer)
        if answer is Renewal.LOST:
            self.lost.set()
        return answer

    def _renew(self) -> None:
        while not self._stop.wait(self.period):
            try:
                if self._ask() is Renewal.LOST:
                    return
            except redis.exceptions.RedisError:
                continue  # Redis away: the lease may expire; the slice finds out itself

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=self.seconds)
        with contextlib.suppress(redis.exceptions.RedisError):  # down: the lease expires itself
            self.leases.release(self.worker, self.token)
