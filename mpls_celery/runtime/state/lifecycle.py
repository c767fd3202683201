"""A run's life in Redis: created with its config, its status, the launcher attached to it (a
lease the launcher renews, whose lapse the Celery processes it started notice), and at the end
its keys expired or purged — on the central Redis and every snapshot store."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson
import redis

from mpls_celery.errors import RunNotFound
from mpls_celery.runtime.keys import RUNS_KEY, RunKeys
from mpls_celery.runtime.state.replies import blob
from mpls_celery.runtime.state.snapshots import SnapshotStore
from mpls_celery.telemetry.states import RunState, RunStatus

# Renewing the launcher's lease: only the holder may (compare-and-set on its id).
_RENEW = (
    "local cur = redis.call('GET', KEYS[1]) "
    "if cur and cjson.decode(cur)['id'] == ARGV[1] then "
    "redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 end return 0"
)
_RELEASE = (
    "local cur = redis.call('GET', KEYS[1]) "
    "if cur and cjson.decode(cur)['id'] == ARGV[1] then redis.call('DEL', KEYS[1]) end return 0"
)


@dataclass(frozen=True)
class LauncherInfo:
    """Who holds a run's launcher lease."""

    id: str
    pid: int
    host: str
    since: float  # unix s

    def to_json(self) -> bytes:
        return orjson.dumps(self.__dict__)

    @classmethod
    def from_json(cls, raw: bytes) -> LauncherInfo | None:
        try:
            data = orjson.loads(raw)
            return cls(str(data["id"]), int(data["pid"]), str(data["host"]), float(data["since"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None


class RunLifecycle:
    def __init__(self, client: redis.Redis, keys: RunKeys, snapshots: SnapshotStore) -> None:
        self._r, self.keys, self._snapshots = client, keys, snapshots

    # creation and status -----------------------------------------------------------------------
    def create(self, config: dict[str, Any]) -> None:
        now = time.time()
        pipe = self._r.pipeline()
        pipe.set(self.keys.config, orjson.dumps(config))
        status = RunStatus(RunState.RUNNING, started=now)
        pipe.hset(self.keys.status, mapping=status.to_fields())  # type: ignore[arg-type]
        pipe.zadd(RUNS_KEY, {self.keys.run_id: now})
        pipe.execute()

    def config(self) -> dict[str, Any]:
        raw = blob(self._r.get(self.keys.config))
        if raw is None:
            raise RunNotFound(f"run {self.keys.run_id!r} not found in Redis")
        data: dict[str, Any] = orjson.loads(raw)
        return data

    def status(self) -> RunStatus:
        return RunStatus.from_fields(self._r.hgetall(self.keys.status))  # type: ignore[arg-type]

    def running(self) -> bool:
        return says_running(self._r.hget(self.keys.status, "state"))

    def set_status(self, state: RunState | None = None, **fields: object) -> None:
        mapping = {k: str(v) for k, v in fields.items()}
        if state is not None:
            mapping["state"] = str(state)
        self._r.hset(self.keys.status, mapping=mapping)  # type: ignore[arg-type]

    # the attached launcher -------------------------------------------------------------------
    def launcher(self) -> LauncherInfo | None:
        raw = blob(self._r.get(self.keys.launcher))
        return None if raw is None else LauncherInfo.from_json(raw)

    def attach(self, info: LauncherInfo, ttl: float, replace: str | None = None) -> bool:
        """Take the launcher lease if nobody holds it (or `replace`, the id of a holder known to
        be dead, still does)."""
        ms = int(ttl * 1000)
        if self._r.set(self.keys.launcher, info.to_json(), nx=True, px=ms):
            return True
        return replace is not None and self.renew(replace, info, ttl)

    def renew(self, holder: str, info: LauncherInfo, ttl: float) -> bool:
        args = (holder, info.to_json(), int(ttl * 1000))
        return bool(self._r.eval(_RENEW, 1, self.keys.launcher, *args))

    def detach(self, holder: str) -> None:
        self._r.eval(_RELEASE, 1, self.keys.launcher, holder)

    # the end -----------------------------------------------------------------------------------
    def keys_of(self, client: redis.Redis) -> list[bytes]:
        return list(client.scan_iter(match=self.keys.everything, count=1000))

    def expire(self, seconds: int, workers: int) -> None:
        for client in self._snapshots.every_client(workers):
            pipe = client.pipeline(transaction=False)
            for key in self.keys_of(client):
                pipe.expire(key, seconds)
            pipe.execute()

    def purge(self, workers: int) -> int:
        deleted = 0
        clients = self._snapshots.every_client(workers)
        for client in reversed(clients):  # central last: it says where the rest is
            keys = self.keys_of(client)
            if keys:
                client.delete(*keys)
            deleted += len(keys)
        self._r.zrem(RUNS_KEY, self.keys.run_id)
        return deleted


def says_running(state: object) -> bool:
    """Whether the status's raw `state` field (as Redis returns it) says the run runs."""
    return state == RunState.RUNNING.encode()
