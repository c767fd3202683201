"""The entry points of a launcher's life: `run_up` (a new run, or `--resume` of one whose launcher
died) watches it to its end; `run_down` re-attaches to such a run only to end it. Both write the
summary and leave nothing of the run running; SIGTERM and Ctrl-C end a run like any stop."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import redis

from mpls_celery.errors import RunAborted
from mpls_celery.interrupts import Terminated, sigterm_raises
from mpls_celery.runtime.launch.stop_policy import Stop
from mpls_celery.runtime.launcher import Launcher, Snapshot, UpRequest

log = logging.getLogger(__name__)


def run_up(
    request: UpRequest, on_poll: Callable[[Snapshot], None] | None = None, poll: float = 0.5
) -> dict[str, Any]:
    launcher = Launcher(request)
    with sigterm_raises():
        try:
            launcher.attach() if request.resume else launcher.start()
            return launcher.finish(_watch_until_done(launcher, on_poll, poll))
        finally:
            launcher.close()


def run_down(request: UpRequest, reason: str = "mpls down") -> dict[str, Any]:
    """End a run whose launcher is gone: re-attach, drain, evaluate, summarise, stop its
    processes and its embedded Redis."""
    launcher = Launcher(request)
    try:
        launcher.attach()
        return launcher.finish(Stop(reason))
    finally:
        launcher.close()


def _watch_until_done(
    launcher: Launcher, on_poll: Callable[[Snapshot], None] | None, poll: float
) -> Stop:
    try:
        while True:
            try:
                snap = launcher.poll()
            except redis.exceptions.RedisError as exc:  # Redis away or refusing: the run pauses
                launcher.outage(exc)
                time.sleep(max(poll, 1.0))
                continue
            if on_poll:
                on_poll(snap)
            stop = launcher.should_stop(snap)
            if stop:
                return stop
            time.sleep(poll)
    except RunAborted as exc:
        log.error("%s", exc)
        return Stop(str(exc), failed=True)
    except KeyboardInterrupt:
        return Stop("interrupted (Ctrl-C)")
    except Terminated:
        return Stop("terminated (SIGTERM)")
