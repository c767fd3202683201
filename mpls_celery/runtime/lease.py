"""The lease that keeps exactly one slice per worker alive. It is renewed by a thread while the
slice runs, so it can be short: a holder that dies is replaced within one lease period — at once
when the holder was a process on this host that no longer exists (a killed Celery child whose
task Celery has already redelivered)."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from pathlib import Path
from types import TracebackType

import redis

from mpls_celery.runtime.store import RunStore


def lease_token(task_id: str) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{task_id}"


def holder_is_dead(holder: str) -> bool:
    """True only when the holder is a process of this host that is gone (or a zombie)."""
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    with contextlib.suppress(OSError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] == "Z"
    return False


def acquire(store: RunStore, worker: int, token: str, seconds: float) -> bool:
    if store.acquire_lease(worker, token, seconds):
        return True
    holder = store.lease_holder(worker)
    return (
        holder is not None
        and holder_is_dead(holder)
        and store.take_over_lease(worker, holder, token, seconds)
    )


class LeaseKeeper:
    """Renews the lease every third of its length until the block ends; `lost` is set when
    another slice holds it."""

    def __init__(self, store: RunStore, worker: int, token: str, seconds: float) -> None:
        self.store, self.worker, self.token, self.seconds = store, worker, token, seconds
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, daemon=True, name="mpls-lease")

    def _renew(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                if not self.store.renew_lease(self.worker, self.token, self.seconds):
                    self.lost.set()
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
            self.store.release_lease(self.worker, self.token)
