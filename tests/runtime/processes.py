"""End-to-end runs as an operator starts them: `mpls up` and friends as subprocesses with a state
folder of the test's own, and what to look for in the process table and in Redis meanwhile."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import orjson
import psutil
import redis

from mpls_celery.runtime.keys import RunKeys
from mpls_celery.runtime.launch.local_runs import LocalRun, live_runs
from mpls_celery.settings import Settings
from tests.conftest import REPO, terminate_then_kill

TINY = ("--workers", "2", "--model", "mlp", "--topology", "full", "--json")


def wait_for(check, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except Exception:
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


# every `mpls up` a test started: one still running when its test ends (it failed half-way) is
# stopped then, so it cannot burn the cores the next tests time themselves on
STARTED: list[subprocess.Popen[str]] = []


def mpls_up(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "mpls_celery", "up", *args],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    STARTED.append(proc)
    return proc


def stop_leftover_launchers() -> None:
    """SIGTERM (the launcher stops its Celery processes and Redis), SIGKILL after 30 s."""
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            terminate_then_kill(proc, timeout=30)


def local_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "MPLS_REDIS_URL")}
    env.update(MPLS_STATE_DIR=str(tmp_path / "state"), MPLS_RUNS_DIR=str(tmp_path / "runs"))
    return env


def local_runs(tmp_path: Path) -> list[LocalRun]:
    return live_runs(Settings(state_dir=tmp_path / "state"))


def run_processes(run_id: str) -> list[psutil.Process]:
    """Every Celery process `mpls up` started for this run (their names carry the run id)."""
    out = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if "celery" in cmdline and f"-{run_id}@" in cmdline:
            out.append(proc)
    return out


def mpls(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mpls_celery", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _head_version(run: LocalRun, worker: int) -> int:
    raw = redis.Redis.from_url(run.redis_url).get(RunKeys(run.run_id).head(worker))
    return int(orjson.loads(raw)["version"]) if raw else -1
