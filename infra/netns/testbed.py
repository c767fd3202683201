"""A multi-host testbed on one machine: the emulated hosts of `hosts.py`, a central Redis and the
launcher (`mpls up`, which evaluates every worker's model) on an unshaped monitor host, a snapshot
Redis on every host, and one `mpls worker --nodes …` per host serving its own workers' queues.
Only the pulls between hosts cross the shaped links. Everything it starts is stopped,
and the namespaces removed, when the `with` block ends — also on SIGINT/SIGTERM.

    with Testbed(ROOMS_HOSTS, {"a": [0, 1], "b": [2, 3], "c": [4, 5]}, workdir) as bed:
        bed.start_services()
        summary = bed.run(["--algo", "mpls", "--iterations", "20"], "x", runs_dir, timeout=600)
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType, TracebackType

import orjson
import redis

from infra.netns.hosts import MONITOR, Host, down, up
from mpls_celery.runtime.backend.embedded_redis import find_redis_server

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "netns-testbed"
CENTRAL_PORT, SNAPSHOT_PORT = 6390, 6391


def redis_url(host: Host, port: int) -> str:
    return f"redis://:{PASSWORD}@{host.ip}:{port}/0"


def wait_ping(url: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if redis.Redis.from_url(url, socket_connect_timeout=0.5).ping():
                return
        except redis.exceptions.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def cross_host_topology(placement: Mapping[str, Sequence[int]]) -> dict[str, object]:
    """Every pair of workers on different hosts: a same-host peer (hundreds of Mbit/s) would
    dominate every normalised link speed B_s / ΣB and hide the differences between the links."""
    host_of = {w: name for name, ws in placement.items() for w in ws}
    edges = [[i, j] for i in host_of for j in host_of if i < j and host_of[i] != host_of[j]]
    return {"workers": len(host_of), "edges": edges}


class Testbed:
    def __init__(
        self,
        hosts: Sequence[Host],
        placement: Mapping[str, Sequence[int]],
        workdir: Path,
        monitor: Host = MONITOR,
    ) -> None:
        self.hosts = {h.name: h for h in hosts}
        self.monitor = monitor
        self.placement = placement
        self.workdir = workdir
        self.procs: list[subprocess.Popen[bytes]] = []
        self._previous: dict[int, object] = {}

    @property
    def central_url(self) -> str:
        return redis_url(self.monitor, CENTRAL_PORT)

    def host_of(self, worker: int) -> str:
        return next(name for name, ws in self.placement.items() if worker in ws)

    def link_mbit(self, a: str, b: str) -> float:
        """The shaped rate between two hosts: the slower host's link."""
        return min(self.hosts[a].mbit, self.hosts[b].mbit)

    # lifecycle -----------------------------------------------------------------------------------
    def __enter__(self) -> Testbed:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._interrupted)
        up(list(self.hosts.values()), self.monitor)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.stop_services()
        finally:
            down([*self.hosts.values(), self.monitor])
            for sig, handler in self._previous.items():
                signal.signal(sig, handler)  # type: ignore[arg-type]

    def _interrupted(self, signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    # services ------------------------------------------------------------------------------------
    def start_services(self, worker_env: Mapping[str, str] | None = None) -> None:
        """Fresh Redis servers (central + one snapshot store per host) and host workers."""
        self.stop_services()
        self.start_redis(self.monitor, CENTRAL_PORT)
        for host in self.hosts.values():
            self.start_redis(host, SNAPSHOT_PORT)
        wait_ping(self.central_url)
        for host in self.hosts.values():
            wait_ping(redis_url(host, SNAPSHOT_PORT))
        for name, workers in self.placement.items():
            env = {
                **self.base_env(),
                "MPLS_REDIS_URL": self.central_url,
                "MPLS_SNAPSHOT_REDIS_URL": redis_url(self.hosts[name], SNAPSHOT_PORT),
                "MPLS_TORCH_THREADS": "1",
                **(worker_env or {}),
            }
            nodes = ",".join(str(w) for w in workers)
            log = (self.workdir / f"worker-{name}.log").open("ab")
            argv = [sys.executable, "-m", "mpls_celery", "worker", "--nodes", nodes,
                    "--loglevel", "WARNING"]  # fmt: skip
            self.procs.append(
                subprocess.Popen(
                    self.hosts[name].command(argv),
                    cwd=REPO,
                    env=env,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                )
            )

    def start_redis(self, host: Host, port: int) -> None:
        data = self.workdir / f"redis-{host.name}-{port}"
        data.mkdir(parents=True, exist_ok=True)
        args = [str(find_redis_server()), "--port", str(port), "--bind", host.ip,
                "--requirepass", PASSWORD, "--save", "", "--appendonly", "no", "--dir", str(data)]  # fmt: skip
        self.procs.append(
            subprocess.Popen(
                host.command(args),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )

    def stop_services(self) -> None:
        for proc in self.procs:
            _signal_group(proc, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
        self.procs.clear()

    def base_env(self) -> dict[str, str]:
        drop = ("REDIS_URL", "MPLS_REDIS_URL", "MPLS_SNAPSHOT_REDIS_URL")
        return {k: v for k, v in os.environ.items() if k not in drop}

    # runs ----------------------------------------------------------------------------------------
    def launch(self, args: Sequence[str], run_id: str, runs_dir: Path) -> subprocess.Popen[str]:
        """Start `mpls up` on the monitor host (per-worker queues, this testbed's topology, kept
        beside the run directories so that a run can be replayed later)."""
        runs_dir.mkdir(parents=True, exist_ok=True)
        topology = runs_dir / "topology.json"
        topology.write_bytes(orjson.dumps(cross_host_topology(self.placement)))
        workers = sum(len(ws) for ws in self.placement.values())
        env = {**self.base_env(), "MPLS_RUNS_DIR": str(runs_dir),
               "MPLS_STATE_DIR": str(self.workdir / "state")}  # fmt: skip
        argv = [sys.executable, "-m", "mpls_celery", "up", "--workers", str(workers),
                "--topology", str(topology), "--no-local-workers", "--queue-mode", "per-worker",
                "--redis", self.central_url, "--run-id", run_id, "--json", *args]  # fmt: skip
        return subprocess.Popen(
            self.monitor.command(argv), cwd=REPO, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip

    def run(
        self, args: Sequence[str], run_id: str, runs_dir: Path, timeout: float
    ) -> dict[str, object]:
        """`mpls up` to its end; its JSON summary. RuntimeError with its stderr when it fails."""
        proc = self.launch(args, run_id, runs_dir)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.terminate()
            out, err = proc.communicate(timeout=30)
        if proc.returncode != 0:
            raise RuntimeError(f"mpls up exited {proc.returncode}: {err[-3000:]}")
        summary: dict[str, object] = orjson.loads(out)
        return summary


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
