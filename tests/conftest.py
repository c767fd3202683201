"""Shared fixtures: a real embedded Redis per session, and real `celery worker` subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from celery import Celery

from mpls_celery.runtime.backend.celery_app import celery_config
from mpls_celery.runtime.backend.embedded_redis import EmbeddedRedis
from mpls_celery.settings import Settings

REPO = Path(__file__).resolve().parents[1]
# `make test` runs the suite in parallel processes (pytest-xdist, `-n auto`): one more than the
# cores, since an end-to-end test spends seconds waiting (Celery's shutdown, leases), and at most
# four, since each starts a launcher and Celery processes of its own.
MAX_TEST_PROCESSES = 4


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    return max(1, min((os.cpu_count() or 1) + 1, MAX_TEST_PROCESSES))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tests first (in their order), the quick ones after: spread over processes, the
    last test to end is then a quick one, not a 40-second run that began when the rest were done."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> Iterator[str]:
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    yield redis_server.url


@pytest.fixture
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No state file or Redis URL leaks in from the developer's machine."""
    monkeypatch.setenv("MPLS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("MPLS_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("MPLS_REDIS_URL", raising=False)
    return tmp_path


# a small `mpls up` that finishes in seconds: 3 MLP workers, 4 iterations each
SMALL_UP = ("--workers", "3", "--model", "mlp", "--iterations", "4", "--topology", "full", "--json")


def run_mpls(
    *args: str, env: dict[str, str], timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """The CLI exactly as a user runs it: a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "mpls_celery", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def worker_env(redis_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "MPLS_REDIS_URL")}
    env.update(MPLS_REDIS_URL=redis_url, MPLS_TORCH_THREADS="1", PYTHONUNBUFFERED="1", **extra)
    return env


@contextmanager
def celery_worker(
    redis_url: str,
    queues: str | None = "mpls.nodes,mpls.pull",
    concurrency: int | None = 1,
    pool: str | None = "prefork",
    log_path: Path | None = None,
    **env: str,
) -> Iterator[subprocess.Popen[bytes]]:
    """A real `celery -A mpls_celery worker` against `redis_url`; stopped on exit. None for
    queues/concurrency/pool leaves that flag out, as a user typing the plain command would."""
    args = [
        sys.executable, "-m", "celery", "-A", "mpls_celery", "worker", "--loglevel=INFO",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
        "-n", f"test-{os.getpid()}-{time.monotonic_ns()}@%h",
    ]  # fmt: skip
    args += ["-Q", queues] if queues else []
    args += ["-c", str(concurrency)] if concurrency else []
    args += ["-P", pool] if pool else []
    if pool:
        env = {"MPLS_WORKER_POOL": pool, **env}
    out = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        args, cwd=REPO, env=worker_env(redis_url, **env), stdout=out, stderr=out
    )
    try:
        yield proc
    finally:
        terminate_then_kill(proc, timeout=15)
        if log_path:
            out.close()  # type: ignore[union-attr]


def terminate_then_kill(proc: subprocess.Popen, timeout: float) -> None:  # type: ignore[type-arg]
    """SIGTERM (a graceful stop), SIGKILL after `timeout`; reads any pipes so none blocks it."""
    proc.terminate()
    try:
        proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()


def celery_client(redis_url: str) -> Celery:
    """A Celery app of the test's own for sending tasks and reading results. Never the package's
    `app`: it caches its result backend on first use, so after an earlier test's Redis is gone a
    `conf.update` would not reach it."""
    client = Celery("mpls-test-client", set_as_current=False)
    client.conf.update(celery_config(Settings(redis_url=redis_url)))
    return client


@pytest.fixture
def start_celery_worker(redis_url: str) -> Callable[..., object]:
    return lambda **kw: celery_worker(redis_url, **kw)
