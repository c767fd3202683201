"""Celery worker subprocesses that `mpls up` starts on this machine, supervises (a process that
exits is started again, a few times) and stops again."""

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

from mpls_celery.runtime.keys import NODE_QUEUE, PULL_QUEUE

log = logging.getLogger(__name__)


def worker_command(queues: str, pool: str, concurrency: int, name: str) -> list[str]:
    return [
        sys.executable, "-m", "celery", "-A", "mpls_celery", "worker", "--loglevel=INFO",
        "-Q", queues, "-P", pool, "-c", str(concurrency), "-n", name,
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip


# Celery's threads-pool consumer can exit (kombu loses its connection object) when the broker
# goes away mid-task; like systemd or compose's `restart: unless-stopped`, start it again.
MAX_RESTARTS = 5


@dataclass
class _Role:
    cmd: list[str]
    env: dict[str, str]
    log: Path


@dataclass
class LocalWorkers:
    redis_url: str
    log_dir: Path
    node_concurrency: int
    pull_concurrency: int
    tag: str
    extra_env: dict[str, str] = field(default_factory=dict)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    restarts: int = 0
    _roles: list[_Role] = field(default_factory=list)

    def start(self) -> LocalWorkers:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.extra_env, "MPLS_REDIS_URL": self.redis_url}
        env["MPLS_TORCH_THREADS"] = "1"
        env.pop("REDIS_URL", None)
        for role, queues, pool, conc in (
            ("nodes", NODE_QUEUE, "prefork", self.node_concurrency),
            ("pull", PULL_QUEUE, "threads", self.pull_concurrency),
        ):
            cmd = worker_command(queues, pool, conc, f"{role}-{self.tag}@%h")
            spec = _Role(
                cmd, {**env, "MPLS_WORKER_POOL": pool}, self.log_dir / f"celery-{role}.log"
            )
            self._roles.append(spec)
            self.procs.append(_spawn(spec))
        return self

    def revive(self) -> bool:
        """Start again any process that exited; False once MAX_RESTARTS are used up."""
        for i, proc in enumerate(self.procs):
            if proc.poll() is not None:
                if self.restarts >= MAX_RESTARTS:
                    return False
                self.restarts += 1
                log.warning("Celery worker %s exited (%s); starting it again", i, proc.returncode)
                self.procs[i] = _spawn(self._roles[i])
        return True

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (Celery's warm shutdown), then after `timeout` SIGKILL to each worker's whole
        process group, prefork children included: nothing this run started outlives it, even
        when a task hangs on a Redis that is gone."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning(
                    "Celery worker %s did not stop in %.0f s; killing it", proc.pid, timeout
                )
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # its own session: the group is its children
            proc.wait()
        self.procs.clear()


def _spawn(role: _Role) -> subprocess.Popen[bytes]:
    with role.log.open("ab") as out:  # the child keeps its own descriptor
        return subprocess.Popen(
            role.cmd, env=role.env, stdout=out, stderr=out, start_new_session=True
        )
