"""Three real hosts (network namespaces, tc-shaped links A 40 / B 10 / C 2 Mbit/s), no bandwidth
emulation in the code: the runtime's measured link speeds must follow the shaping; the layers and
bytes MPLS pulled per link are printed. Everything is torn down afterwards, even on failure."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

import orjson
import pytest
import redis

from infra.netns.hosts import DEFAULT_HOSTS, Host, available, down, up
from mpls_celery.core.layering import layer_bytes, model_layers
from mpls_celery.core.models import build_model
from mpls_celery.runtime.embedded_redis import find_redis_server
from mpls_celery.runtime.store import RunStore
from mpls_celery.telemetry.records import IterationRecord
from tests.conftest import REPO

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(available() is not None, reason=str(available())),
]
PASSWORD = "netns-test"
PLACEMENT = {"a": [0, 1], "b": [2, 3], "c": [4, 5]}


def redis_url(host: Host, port: int) -> str:
    return f"redis://:{PASSWORD}@{host.ip}:{port}/0"


def start_redis(host: Host, port: int, tmp) -> subprocess.Popen[bytes]:  # type: ignore[no-untyped-def]
    args = [str(find_redis_server()), "--port", str(port), "--bind", host.ip, "--requirepass", PASSWORD,
            "--save", "", "--appendonly", "no", "--dir", str(tmp)]  # fmt: skip
    return subprocess.Popen(
        host.command(args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def wait_ping(url: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if redis.Redis.from_url(url, socket_connect_timeout=0.5).ping():
                return
        except redis.exceptions.ConnectionError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer")


def test_three_hosts_measured_speeds_and_layers_follow_the_shaping(tmp_path, capsys):
    hosts = {h.name: h for h in DEFAULT_HOSTS}
    central = redis_url(hosts["a"], 6390)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        up(DEFAULT_HOSTS)
        procs.append(start_redis(hosts["a"], 6390, tmp_path))
        for h in DEFAULT_HOSTS:
            procs.append(start_redis(h, 6391, tmp_path))
        wait_ping(central)
        for h in DEFAULT_HOSTS:
            wait_ping(redis_url(h, 6391))
        base_env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "MPLS_REDIS_URL")}
        for name, workers in PLACEMENT.items():
            env = {**base_env, "MPLS_REDIS_URL": central, "MPLS_SNAPSHOT_REDIS_URL": redis_url(hosts[name], 6391),
                   "MPLS_TORCH_THREADS": "1"}  # fmt: skip
            nodes = f"{workers[0]}-{workers[-1]}"
            log = (tmp_path / f"worker-{name}.log").open("wb")
            procs.append(subprocess.Popen(hosts[name].command([sys.executable, "-m", "mpls_celery", "worker", "--nodes", nodes]),
                                          cwd=REPO, env=env, stdout=log, stderr=log))  # fmt: skip
        launcher_env = {
            **base_env,
            "MPLS_RUNS_DIR": str(tmp_path / "runs"),
            "MPLS_STATE_DIR": str(tmp_path),
        }
        launch = subprocess.run(
            hosts["a"].command([sys.executable, "-m", "mpls_celery", "up", "--workers", "6", "--model", "lenet5",
                                "--dataset", "digits", "--topology", "full", "--iterations", "15",
                                "--no-local-workers", "--queue-mode", "per-worker", "--redis", central, "--json"]),
            cwd=REPO, env=launcher_env, capture_output=True, text=True, timeout=400,
        )  # fmt: skip
        assert launch.returncode == 0, launch.stderr[-3000:]
        summary = orjson.loads(launch.stdout)
        assert [w["iteration"] for w in summary["workers"]] == [15] * 6

        store = RunStore(redis.Redis.from_url(central), summary["run_id"])
        host_of = {w: name for name, ws in PLACEMENT.items() for w in ws}
        speeds: dict[tuple[str, str], list[float]] = {}
        for worker in range(6):
            for peer, bps in store.links(worker).items():
                speeds.setdefault((host_of[worker], host_of[peer]), []).append(bps)
        # MPLS balances transfer *time*: big layers over fast links, small ones may come from slow
        # peers in phase 2, so compare bytes per link, not layer counts.
        model = build_model("lenet5", (1, 28, 28), 10)
        sizes = layer_bytes(model.state_dict(), model_layers(model))
        layers: dict[tuple[str, str], int] = {}
        pulled: dict[tuple[str, str], float] = {}
        records, _ = store.read_events()
        for r in records:
            if isinstance(r, IterationRecord):
                for peer, ls in r.plan.items():
                    key = (host_of[r.worker], host_of[peer])
                    layers[key] = layers.get(key, 0) + len(ls)
                    pulled[key] = pulled.get(key, 0.0) + float(sizes[ls].sum())
        median = {k: statistics.median(v) * 8 / 1e6 for k, v in speeds.items()}
        with capsys.disabled():  # shown in CI's output even when the test passes
            print("\nmeasured pull speed (Mbit/s) and layers pulled, puller host <- peer host:")
            for key in sorted(median):
                print(
                    f"  {key[0]} <- {key[1]}: {median[key]:8.2f} Mbit/s   {layers.get(key, 0):4d} layers"
                    f"  {pulled.get(key, 0.0) / 1e6:7.2f} MB"
                )
        # Measured link speeds must follow the shaping: from A, peers on B (10 Mbit/s) beat peers
        # on C (2); from B, A beats C. (Which bytes MPLS then pulls where is printed above; over 15
        # iterations its split is not reliably in favour of the fast host — layer selection may
        # mask a fast peer whose recent progress is low — so it is reported, not asserted.)
        compared = 0
        for puller, fast, slow in (("a", "b", "c"), ("b", "a", "c")):
            if (puller, fast) in median and (puller, slow) in median:
                assert median[(puller, fast)] > 2 * median[(puller, slow)], median
                compared += 1
        assert compared >= 1, f"no host measured both a fast and a slow peer: {median}"
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        down(DEFAULT_HOSTS)
