"""A Celery process that `mpls up` started watches that run's launcher: the launcher renews a
lease in Redis, and when it has lapsed for longer than the grace period — the launcher was killed
and nobody re-attached (`mpls up --resume`) — the process stops itself (Celery's warm shutdown,
then SIGKILL to its group), so no orphan outlives a run unnoticed. While Redis cannot be reached
the launcher's pid decides, when it is on this host. Nor does such a process hang in its shutdown
(seen after Celery's "Unrecoverable error" when Redis refused an ack): its group is killed after
a bound and its launcher starts it again; slices are idempotent and redelivered.

It runs on the worker's own timer (a Celery bootstep), not in a thread of its own: a prefork
parent that forks its children while another of its threads holds a lock gives children that
hang on it."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from typing import Any

import redis
from celery import bootsteps

from mpls_celery.runtime.backend.acl import load_credentials
from mpls_celery.runtime.backend.connection import redis_client
from mpls_celery.runtime.backend.pids import process_exists
from mpls_celery.runtime.keys import RunKeys
from mpls_celery.settings import Settings, load_settings

log = logging.getLogger(__name__)
POLL_SECONDS = 2.0
# Seconds a warm shutdown may take before the group is killed: long enough for the slice in
# flight to end (its budget, 15 s by default); after an unrecoverable error nothing is worth it.
KILL_AFTER = 30.0
KILL_AFTER_FAILURE = 3.0


class LauncherWatch:
    """Whether the launcher that started this process is still attached to its run."""

    def __init__(self, settings: Settings) -> None:
        self.run_id = str(settings.launcher_watch)
        self.grace, self.pid = settings.launcher_grace, settings.launcher_pid
        self.key = RunKeys(self.run_id).launcher
        self.client = redis_client(_url(settings, self.run_id), settings, timeout=2.0, retries=0)
        self.lapsed: float | None = None

    def gone(self, now: float) -> bool:
        """True once the launcher has been away for the grace period."""
        if self._attached():
            self.lapsed = None
            return False
        self.lapsed = self.lapsed if self.lapsed is not None else now
        return now - self.lapsed >= self.grace

    def _attached(self) -> bool:
        try:
            return bool(self.client.exists(self.key))
        except redis.exceptions.RedisError:  # cannot tell from Redis: the pid, where it is known
            return self.pid is None or process_exists(self.pid)


class LauncherWatchStep(bootsteps.StartStopStep):  # type: ignore[misc]  # Celery is untyped
    """Polls the watch on the worker's timer; stops the worker when its launcher is gone."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        self.watch: LauncherWatch | None = None
        self.entry: Any = None
        self.stopping = False

    def start(self, parent: Any) -> None:
        settings = load_settings()
        if settings.launcher_watch:
            self.watch = LauncherWatch(settings)
            self.entry = parent.timer.call_repeatedly(POLL_SECONDS, self._check)

    def _check(self) -> None:
        if self.watch is None or self.stopping or not self.watch.gone(time.monotonic()):
            return
        self.stopping = True
        log.warning(
            "run %s has had no launcher for %.0f s: stopping (mpls up --resume %s restarts "
            "the run's processes)", self.watch.run_id, self.watch.grace, self.watch.run_id,
        )  # fmt: skip
        os.kill(os.getpid(), signal.SIGTERM)  # Celery's warm shutdown

    def close(self, parent: Any) -> None:
        """The first step of every shutdown, whatever started it."""
        if self.watch is None:  # a process a user started: Celery's own shutdown, unbounded
            return
        self.watch = None
        failed = bool(getattr(parent, "exitcode", 0))
        bound = KILL_AFTER_FAILURE if failed else KILL_AFTER
        threading.Thread(target=_kill_group_later, args=(bound,), daemon=True).start()

    def stop(self, parent: Any) -> None:
        if self.entry is not None:
            self.entry.cancel()


def _url(settings: Settings, run_id: str) -> str:
    """Whose eyes: a secure run's Celery user sees no run key, a worker's user may read them."""
    url = settings.redis_url or ""
    if settings.credentials_file is not None:
        with contextlib.suppress(Exception):
            creds = load_credentials(settings.credentials_file)
            if creds.run_id == run_id and creds.workers:
                url = next(iter(creds.workers.values()))
    return url


def _kill_group_later(seconds: float) -> None:
    time.sleep(seconds)
    with contextlib.suppress(OSError):
        os.killpg(os.getpgid(0), signal.SIGKILL)
