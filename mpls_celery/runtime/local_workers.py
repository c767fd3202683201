"""Celery worker subprocesses that `mpls up` starts on this machine, and stops again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from mpls_celery.runtime.celery_app import NODE_QUEUE, PULL_QUEUE


def worker_command(queues: str, pool: str, concurrency: int, name: str) -> list[str]:
    return [
        sys.executable, "-m", "celery", "-A", "mpls_celery", "worker", "--loglevel=INFO",
        "-Q", queues, "-P", pool, "-c", str(concurrency), "-n", name,
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip


@dataclass
class LocalWorkers:
    redis_url: str
    log_dir: Path
    node_concurrency: int
    pull_concurrency: int
    tag: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self) -> LocalWorkers:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "MPLS_REDIS_URL": self.redis_url, "MPLS_TORCH_THREADS": "1"}
        env.pop("REDIS_URL", None)
        for role, queues, pool, conc in (
            ("nodes", NODE_QUEUE, "prefork", self.node_concurrency),
            ("pull", PULL_QUEUE, "threads", self.pull_concurrency),
        ):
            log = (self.log_dir / f"celery-{role}.log").open("ab")
            cmd = worker_command(queues, pool, conc, f"{role}-{self.tag}@%h")
            role_env = {**env, "MPLS_WORKER_POOL": pool}
            self.procs.append(subprocess.Popen(cmd, env=role_env, stdout=log, stderr=log))
        return self

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs)

    def stop(self, timeout: float = 20.0) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()
