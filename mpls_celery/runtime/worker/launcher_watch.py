"""A Celery process that `mpls up` started watches that run's launcher: the launcher renews a
lease in Redis, and when it has lapsed for longer than the grace period — the launcher was killed
and nobody re-attached (`mpls up --resume`) — the process stops itself (Celery's warm shutdown,
then SIGKILL to its group), so no orphan outlives a run unnoticed. While Redis cannot be reached
the launcher's pid decides, when it is on this host."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time

import redis

from mpls_celery.runtime.backend.acl import load_credentials
from mpls_celery.runtime.backend.connection import redis_client
from mpls_celery.runtime.backend.pids import process_exists
from mpls_celery.runtime.keys import RunKeys
from mpls_celery.settings import Settings, load_settings

log = logging.getLogger(__name__)
POLL_SECONDS = 2.0
KILL_AFTER = 60.0  # seconds a warm shutdown may take before the group is killed


def start_watch(settings: Settings | None = None) -> threading.Thread | None:
    """From MPLS_LAUNCHER_WATCH (run id), MPLS_LAUNCHER_GRACE (s), MPLS_LAUNCHER_PID; None when
    this process was not started by a launcher."""
    settings = settings or load_settings()
    if not settings.launcher_watch:
        return None
    thread = threading.Thread(
        target=_watch, args=(settings,), daemon=True, name="mpls-launcher-watch"
    )
    thread.start()
    return thread


def _watch(settings: Settings) -> None:
    run_id = str(settings.launcher_watch)
    key = RunKeys(run_id).launcher
    client = redis_client(_url(settings, run_id), settings, timeout=2.0, retries=0)
    lapsed: float | None = None
    while True:
        time.sleep(POLL_SECONDS)
        if _attached(client, key, settings.launcher_pid):
            lapsed = None
            continue
        lapsed = lapsed if lapsed is not None else time.monotonic()
        if time.monotonic() - lapsed >= settings.launcher_grace:
            log.warning(
                "run %s has had no launcher for %.0f s: stopping (mpls up --resume %s restarts "
                "the run's processes)", run_id, settings.launcher_grace, run_id,
            )  # fmt: skip
            _stop_self()
            return


def _attached(client: redis.Redis, key: str, launcher_pid: int | None) -> bool:
    try:
        return bool(client.exists(key))
    except redis.exceptions.RedisError:  # cannot tell from Redis: the pid, where it is known
        return launcher_pid is None or process_exists(launcher_pid)


def _url(settings: Settings, run_id: str) -> str:
    """Whose eyes: a secure run's Celery user sees no run key, a worker's user may read them."""
    url = settings.redis_url or ""
    if settings.credentials_file is not None:
        with contextlib.suppress(Exception):
            creds = load_credentials(settings.credentials_file)
            if creds.run_id == run_id and creds.workers:
                url = next(iter(creds.workers.values()))
    return url


def _stop_self() -> None:
    os.kill(os.getpid(), signal.SIGTERM)  # Celery's warm shutdown
    time.sleep(KILL_AFTER)
    with contextlib.suppress(OSError):
        os.killpg(os.getpgid(0), signal.SIGKILL)
