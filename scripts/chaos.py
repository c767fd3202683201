"""Chaos run: a bounded `mpls up` on three emulated hosts (one `mpls worker --nodes` process group
each, per-worker queues, an embedded Redis) while faults strike on a schedule — SIGKILL of random
host workers (restarted two seconds later, as systemd would), SIGKILL of the embedded Redis, and
one host killed for good — then the same seed without faults. Reports iterations lost, the
longest stall around each fault, final accuracy against the clean run, and whether anything hung.

    .venv/bin/python scripts/chaos.py --iterations 2000 --seed 1
    .venv/bin/python scripts/chaos.py --cases      # each operator fault on its own, as a table
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from mpls_celery.runtime.launch.local_runs import LocalRun, live_runs
from mpls_celery.runtime.store import RunStore
from mpls_celery.settings import Settings
from mpls_celery.telemetry.records import IterationRecord
from mpls_celery.telemetry.rundir import read_metrics

HOSTS = {"a": "0-1", "b": "2-3", "c": "4-5"}
REPO = Path(__file__).resolve().parents[1]


@dataclass
class Fault:
    at: float  # seconds after the run started
    kind: str  # "host" (killed, restarted), "redis", "host-for-good"
    target: str = ""
    happened_at: float | None = None


@dataclass
class Cluster:
    env: dict[str, str]
    hosts: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)

    def start(self, host: str) -> None:
        cmd = [sys.executable, "-m", "mpls_celery", "worker", "--nodes", HOSTS[host],
               "--concurrency", "8", "--loglevel", "WARNING"]  # fmt: skip
        self.hosts[host] = subprocess.Popen(
            cmd, env=self.env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip

    def kill(self, host: str) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.hosts[host].pid, signal.SIGKILL)
        self.hosts[host].wait()

    def revive(self) -> None:
        """Like systemd's Restart=always: a host process that exited by itself starts again."""
        for host, proc in list(self.hosts.items()):
            if host not in self.gone and proc.poll() is not None:
                self.start(host)

    def stop(self) -> None:
        for host in list(self.hosts):
            self.kill(host)


def schedule(rng: random.Random) -> list[Fault]:
    return [
        Fault(10.0, "host", rng.choice(["a", "b"])),
        Fault(30.0, "redis"),
        Fault(50.0, "host", rng.choice(["a", "b"])),
        Fault(70.0, "host-for-good", "c"),
    ]


def run_once(args: argparse.Namespace, faults: list[Fault], label: str) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix=f"mpls-chaos-{label}-"))
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "MPLS_REDIS_URL")}
    env.update(MPLS_STATE_DIR=str(work / "state"), MPLS_RUNS_DIR=str(args.runs / label))
    up_cmd = [
        sys.executable, "-m", "mpls_celery", "up", "--workers", "6", "--model", args.model,
        "--dataset", "digits", "--topology", "full", "--iterations", str(args.iterations),
        "--seed", str(args.seed), "--no-local-workers", "--queue-mode", "per-worker",
        "--dead-after", "10", "--json",
    ]  # fmt: skip
    launcher = subprocess.Popen(
        up_cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    run = _wait_run(Settings(state_dir=work / "state"))
    cluster = Cluster({**env, "MPLS_REDIS_URL": run.redis_url, "MPLS_TORCH_THREADS": "1"})
    for host in HOSTS:
        cluster.start(host)
    started = RunStore(redis.Redis.from_url(run.redis_url), run.run_id).run.status().started
    assert started is not None
    settings = Settings(state_dir=work / "state")
    chaos = threading.Thread(
        target=_strike, args=(faults, cluster, settings, run, started), daemon=True
    )
    chaos.start()
    hung = False
    supervise = threading.Event()

    def supervisor() -> None:
        while not supervise.wait(1.0):
            cluster.revive()

    threading.Thread(target=supervisor, daemon=True).start()
    try:
        out, err = launcher.communicate(timeout=args.timeout)
    except subprocess.TimeoutExpired:
        hung = True
        launcher.send_signal(signal.SIGTERM)
        out, err = launcher.communicate(timeout=60)
    finally:
        supervise.set()
        cluster.stop()
    summary = json.loads(out) if out.strip() else {"reason": f"no summary: {err[-300:]}"}
    return {"label": label, "hung": hung, "summary": summary, "faults": faults,
            "exit": launcher.returncode}  # fmt: skip


def _wait_run(settings: Settings, timeout: float = 120.0) -> LocalRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = live_runs(settings)
        if runs:
            return runs[0]
        time.sleep(0.2)
    raise SystemExit("error: the launcher did not start a run")


def _strike(
    faults: list[Fault], cluster: Cluster, settings: Settings, run: LocalRun, started: float
) -> None:
    for fault in faults:
        time.sleep(max(0.0, started + fault.at - time.time()))
        fault.happened_at = round(time.time() - started, 2)
        if fault.kind == "redis":
            local = next((r for r in live_runs(settings) if r.run_id == run.run_id), run)
            os.kill(local.redis_pid or run.redis_pid or 0, signal.SIGKILL)
            continue
        if fault.kind == "host-for-good":
            cluster.gone.add(fault.target)
        cluster.kill(fault.target)
        if fault.kind == "host":
            time.sleep(2.0)
            cluster.start(fault.target)


def analyse(result: dict[str, Any]) -> dict[str, Any]:
    summary = result["summary"]
    run_dir = Path(summary.get("run_dir", "."))
    records = [r for r in read_metrics(run_dir) if isinstance(r, IterationRecord)]
    by_worker: dict[int, list[float]] = {}
    ks: dict[int, set[int]] = {}
    for r in records:
        by_worker.setdefault(r.worker, []).append(r.t)
        ks.setdefault(r.worker, set()).add(r.k)
    gaps = []  # (start, end) of every pause between two iterations of one worker
    for times in by_worker.values():
        times.sort()
        gaps += list(itertools.pairwise(times))
    stalls = {}
    for fault in result["faults"]:
        if fault.happened_at is None or fault.kind == "host-for-good":
            continue
        around = [end - start for start, end in gaps if start <= fault.happened_at <= end]
        label = f"{fault.kind} {fault.target}".strip() + f" at {fault.happened_at:.0f} s"
        stalls[label] = round(max(around, default=0.0), 2)
    workers = summary.get("workers", [])
    lost = sum(max(0, int(w["iteration"]) - len(ks.get(w["worker"], ()))) for w in workers)
    return {
        "hung": result["hung"],
        "reason": summary.get("reason"),
        "exit": result["exit"],
        "iterations": len(records),
        "iterations_lost": lost,
        "longest_pause": round(max((e - s for s, e in gaps), default=0.0), 2),
        "stalls": stalls,
        "dead": summary.get("dead", []),
        "final_mean_acc": summary.get("final_mean_acc"),
        "final_avg_model_acc": summary.get("final_avg_model_acc"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--model", default="mlp")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=600.0, help="a run longer than this hung")
    parser.add_argument("--runs", type=Path, default=Path("runs/chaos"))
    parser.add_argument(
        "--cases", action="store_true", help="instead: each operator fault on its own (chaos_cases)"
    )
    args, rest = parser.parse_known_args()
    if args.cases:
        sys.path.insert(0, str(REPO))  # run as a file, scripts/ is no package on the path
        from scripts.chaos_cases import main as cases

        cases(rest)
        return
    chaotic = analyse(run_once(args, schedule(random.Random(args.seed)), "chaos"))
    clean = analyse(run_once(args, [], "clean"))
    report = {"chaos": chaotic, "clean": clean}
    print(json.dumps(report, indent=1))
    ok = not chaotic["hung"] and not clean["hung"]
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
