"""The launcher's Redis: the one named (flag or environment), else one on the default port, else
an embedded server of the run's own — started, restarted from its AOF when it dies, adopted by a
launcher that re-attaches. And what an outage is: Redis unreachable (the network, a restart: the
run pauses as long as it takes) or Redis refusing writes for want of a resource (a full disk
under its AOF, `maxmemory`: a pause with a deadline, then the run fails with one line). Every
pause is recorded — when, how long, why — for the summary."""

from __future__ import annotations

import logging
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from mpls_celery.errors import RedisUnavailable, RunAborted
from mpls_celery.runtime.backend.connection import check_reachable, safe_url
from mpls_celery.runtime.backend.embedded_redis import EmbeddedRedis
from mpls_celery.runtime.backend.redis_url import resolve_redis_url
from mpls_celery.runtime.launch.local_runs import LocalRun
from mpls_celery.settings import Settings

log = logging.getLogger(__name__)
REDIS_LOST = "its embedded Redis died and could not be restarted"


@dataclass
class Pause:
    start: float  # run time (s)
    cause: str
    end: float | None = None

    def document(self) -> dict[str, Any]:
        seconds = None if self.end is None else round(self.end - self.start, 1)
        return {"start": round(self.start, 1), "seconds": seconds, "cause": self.cause}


def refusal(exc: Exception) -> str | None:
    """What Redis says when it answers but will not store — a full disk under its AOF or RDB
    (MISCONF), `maxmemory` (OOM), a read-only replica — else None (another error)."""
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, redis.exceptions.OutOfMemoryError):
        return f"OOM {message}"
    if isinstance(exc, redis.exceptions.ReadOnlyError):
        return f"READONLY {message}"
    if not isinstance(exc, redis.exceptions.ResponseError):
        return None
    for code in ("MISCONF", "OOM", "READONLY"):  # also inside a script's error
        if code in message:
            return message[message.index(code) :]
    return None


class RedisSupervisor:
    def __init__(
        self, settings: Settings, named: str | None, run_id: str, resource_wait: float
    ) -> None:
        self.settings, self.named, self.run_id = settings, named, run_id
        self.resource_wait = resource_wait
        self.embedded: EmbeddedRedis | None = None
        self.url = ""
        self.pauses: list[Pause] = []
        self.on_restart: Callable[[], None] = lambda: None  # e.g. restore a secure run's users

    # finding or starting Redis -----------------------------------------------------------------
    def start(self, secure: bool) -> str:
        """The Redis named by flag or environment, else one on the default port, else a server
        of this run's own (never another local run's: it may end before this one)."""
        url = resolve_redis_url(self.settings, self.named, local=False)
        try:
            check_reachable(url, self.settings)
            self.url = url
            return url
        except RedisUnavailable:
            if self.named or self.settings.redis_url:
                raise  # the user named a Redis: do not silently use another one
        # a secure run must not leave a password-less default user beside its ACL users
        password = secrets.token_urlsafe(24) if secure else None
        self.embedded = EmbeddedRedis(
            data_dir=self.settings.state_dir / "redis" / self.run_id,
            password=password,
            appendonly=True,  # a restart after a crash loses no published version
        ).start()
        self.url = self.embedded.url
        return self.url

    def adopt(self, run: LocalRun) -> str:
        """The Redis of a run whose launcher died: its embedded server (restarted from its data
        if it died too), or the one it used."""
        if run.embedded and run.redis_data_dir:
            self.embedded = EmbeddedRedis.adopt(
                run.redis_url, run.redis_pid, self.settings.state_dir / "redis" / run.run_id
            )
        check_reachable(run.redis_url, self.settings)
        self.url = run.redis_url
        return self.url

    # outages -----------------------------------------------------------------------------------
    @property
    def paused(self) -> Pause | None:
        return self.pauses[-1] if self.pauses and self.pauses[-1].end is None else None

    def since_pause(self, now: float) -> float:
        """Seconds since the last pause ended (infinite without one; 0 during one)."""
        if not self.pauses:
            return float("inf")
        end = self.pauses[-1].end
        return 0.0 if end is None else now - end

    def outage(self, exc: Exception, now: float) -> None:
        """Redis failed a poll at run time `now`: record the pause, restart an embedded server
        that died (from its AOF), and fail the run once a refusal outlasts its deadline."""
        cause = refusal(exc) or f"Redis unreachable ({exc})"
        pause = self.paused
        if pause is None or pause.cause != cause:
            if pause is not None:
                pause.end = now
            pause = Pause(now, cause)
            self.pauses.append(pause)
            log.warning("the run pauses: %s", cause)
        if refusal(exc) and now - pause.start > self.resource_wait:
            raise RunAborted(
                f"Redis at {safe_url(self.url)} refused writes for {now - pause.start:.0f} s: "
                f"{cause}"
            )
        if self.embedded is None or self.embedded.alive():
            return
        log.warning("the embedded Redis (pid %s) has exited; restarting it", self.embedded.pid)
        try:
            self.embedded.restart()
        except (RedisUnavailable, OSError) as failure:
            raise RunAborted(f"{REDIS_LOST}: {failure}") from None
        self.on_restart()

    def back(self, now: float) -> None:
        pause = self.paused
        if pause is not None:
            pause.end = now
            log.warning("the run goes on after %.1f s (%s)", now - pause.start, pause.cause)

    # the end -----------------------------------------------------------------------------------
    def stop(self, keep_data: bool = False) -> None:
        """Stop an embedded server (its data folder too, unless a later resume needs it)."""
        if self.embedded is None:
            return
        self.embedded.stop()
        if self.embedded.data_dir is not None and not keep_data:
            shutil.rmtree(self.embedded.data_dir, ignore_errors=True)
