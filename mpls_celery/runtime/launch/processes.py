"""The Celery worker processes `mpls up` runs on this machine: started (or adopted from a launcher
that died), supervised — a process that exits is started again, a few times — and stopped.

Each is started in a session of its own and told which run's launcher to watch
(MPLS_LAUNCHER_WATCH): when the launcher's lease lapses for longer than the grace period and no
launcher re-attaches, it stops itself (`worker/launcher_watch.py`), so nothing outlives a run
unnoticed. A re-attaching launcher adopts the live ones by pid."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from mpls_celery.runtime.backend.pids import process_exists
from mpls_celery.runtime.keys import NODE_QUEUE, PULL_QUEUE, celery_name

log = logging.getLogger(__name__)
# Celery's threads-pool consumer can exit (kombu loses its connection object) when the broker
# goes away mid-task; like systemd or compose's `restart: unless-stopped`, start it again — for
# free while Redis is away or refusing writes (that is not a crash), at most this often otherwise.
MAX_RESTARTS = 5


def worker_command(queues: str, pool: str, concurrency: int, name: str) -> list[str]:
    return [
        sys.executable, "-m", "celery", "-A", "mpls_celery", "worker", "--loglevel=INFO",
        "-Q", queues, "-P", pool, "-c", str(concurrency), "-n", name,
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip


@dataclass
class _Role:
    cmd: list[str]
    env: dict[str, str]
    log: Path


@dataclass
class CeleryProcesses:
    redis_url: str
    log_dir: Path
    node_concurrency: int
    pull_concurrency: int
    tag: str  # the run id: in each process's node name and what its watcher watches
    extra_env: dict[str, str] = field(default_factory=dict)
    grace: float = 60.0  # seconds a process goes on without a launcher
    restarts: int = 0
    procs: list[subprocess.Popen[bytes] | None] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)
    _roles: list[_Role] = field(default_factory=list)

    def __post_init__(self) -> None:
        env = {**os.environ, **self.extra_env, "MPLS_REDIS_URL": self.redis_url}
        env.update(
            MPLS_TORCH_THREADS="1",
            MPLS_LAUNCHER_WATCH=self.tag,
            MPLS_LAUNCHER_GRACE=str(self.grace),
        )
        env.pop("REDIS_URL", None)
        for role, queues, pool, conc in (
            ("nodes", NODE_QUEUE, "prefork", self.node_concurrency),
            ("pull", PULL_QUEUE, "threads", self.pull_concurrency),
        ):
            cmd = worker_command(queues, pool, conc, celery_name(role, self.tag))
            log_path = self.log_dir / f"celery-{role}.log"
            self._roles.append(_Role(cmd, {**env, "MPLS_WORKER_POOL": pool}, log_path))

    def start(self, adopt: list[int] | None = None) -> CeleryProcesses:
        """Start every role; with `adopt` (pids a dead launcher recorded, in role order), keep
        those that still live instead of starting them again."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        adopt = adopt or []
        for i, role in enumerate(self._roles):
            if i < len(adopt) and process_exists(adopt[i]):
                self.procs.append(None)
                self.pids.append(adopt[i])
                log.info("adopted Celery process %s (%s)", adopt[i], role.log.stem)
                continue
            proc = _spawn(role)
            self.procs.append(proc)
            self.pids.append(proc.pid)
        return self

    def revive(self, free: bool = False) -> bool:
        """Start again any process that exited (`free`: without spending the restart budget, as
        while Redis is away); False once MAX_RESTARTS are used up."""
        for i, pid in enumerate(self.pids):
            if self._alive(i):
                continue
            if not free and self.restarts >= MAX_RESTARTS:
                return False
            self.restarts += 0 if free else 1
            log.warning("Celery process %s exited; starting it again", pid)
            proc = _spawn(self._roles[i])
            self.procs[i], self.pids[i] = proc, proc.pid
        return True

    def _alive(self, i: int) -> bool:
        proc = self.procs[i]
        return proc.poll() is None if proc is not None else process_exists(self.pids[i])

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (Celery's warm shutdown), then after `timeout` SIGKILL to each process's whole
        group, prefork children included: nothing this run started outlives it, even when a
        task hangs on a Redis that is gone."""
        stop_processes(self.pids, timeout)
        for proc in self.procs:
            if proc is not None:
                proc.wait()
        self.procs.clear()
        self.pids.clear()


def stop_processes(pids: list[int], timeout: float = 10.0) -> None:
    """SIGTERM each, wait up to `timeout` for all, then SIGKILL each one's process group (each
    leads its own session: the group is it and its children)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(process_exists(p) for p in pids) and time.monotonic() < deadline:
        _reap(pids)
        time.sleep(0.1)
    for pid in pids:
        if process_exists(pid):
            log.warning("Celery process %s did not stop in %.0f s; killing it", pid, timeout)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    _reap(pids)


def _reap(pids: list[int]) -> None:
    """Collect those of `pids` that are this process's exited children (others: no-op)."""
    for pid in pids:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)


def _spawn(role: _Role) -> subprocess.Popen[bytes]:
    with role.log.open("ab") as out:  # the child keeps its own descriptor
        return subprocess.Popen(
            role.cmd, env=role.env, stdout=out, stderr=out, start_new_session=True
        )
