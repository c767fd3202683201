"""Chaos, case by case: each fault an operator meets (issue: a runtime that outlives its launcher
and distrusts what it reads), struck at a real `mpls up` (6 workers, LeNet-5 on digits, an
embedded Redis, local Celery processes), with what came of it: how the run ended, its exit code,
its `error:` lines, whether anything printed a traceback or hung, and the check that proves the
outcome (every iteration recorded once, nothing left running, ...). Prints a markdown table.

    .venv/bin/python scripts/chaos.py --cases          # or: python -m scripts.chaos_cases
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
import redis

from mpls_celery.runtime.backend.pids import process_exists
from mpls_celery.runtime.keys import RunKeys
from mpls_celery.runtime.launch.local_runs import LocalRun, local_runs
from mpls_celery.settings import Settings
from mpls_celery.telemetry.completeness import account_iterations
from mpls_celery.telemetry.records import IterationRecord, to_json
from mpls_celery.telemetry.rundir import METRICS, read_metrics

REPO = Path(__file__).resolve().parents[1]
UP = ("--workers", "6", "--model", "lenet5", "--dataset", "digits", "--topology", "full")


@dataclass
class Outcome:
    case: str
    ended: str
    exit: int | None
    errors: list[str]
    traceback: bool
    hung: bool
    check: str
    seconds: float


class Bench:
    """One case's own state and run folders, and `mpls` as a user types it."""

    def __init__(self, name: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=f"mpls-case-{name}-"))
        self.env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "MPLS_REDIS_URL")}
        self.env |= {
            "MPLS_STATE_DIR": str(self.dir / "state"),
            "MPLS_RUNS_DIR": str(self.dir / "runs"),
        }

    def start(self, *args: str) -> subprocess.Popen[str]:
        argv = [sys.executable, "-m", "mpls_celery", *args]
        return subprocess.Popen(argv, cwd=REPO, env=self.env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip

    def mpls(self, *args: str, timeout: float = 300) -> tuple[int | None, str, str, bool]:
        proc = self.start(*args)
        try:
            out, err = proc.communicate(timeout=timeout)
            return proc.returncode, out, err, False
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            return None, out, err, True

    def run(self, timeout: float = 300) -> LocalRun:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = local_runs(Settings(state_dir=self.dir / "state"))
            if runs and runs[0].celery_pids:
                return runs[0]
            time.sleep(0.2)
        raise RuntimeError("no run started")

    def progress(self, run: LocalRun, at_least: int, timeout: float = 120) -> None:
        client = redis.Redis.from_url(run.redis_url)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(_k(client, run.run_id, w) >= at_least for w in range(6)):
                return
            time.sleep(0.3)
        raise RuntimeError(f"the workers never reached iteration {at_least}")


def _k(client: redis.Redis, run_id: str, worker: int) -> int:
    raw = client.hget(RunKeys(run_id).state(worker), "k")
    return int(raw) if raw else 0


def outcome(
    case: str, result: tuple[int | None, str, str, bool], check: str, began: float
) -> Outcome:
    code, out, err, hung = result
    ended = orjson.loads(out).get("reason", "?") if out.strip().startswith("{") else "(no summary)"
    errors = [line[:160] for line in err.splitlines() if line.startswith("error:")]
    return Outcome(
        case, ended, code, errors, "Traceback" in err, hung, check, time.monotonic() - began
    )


def exactly_once(run_dir: Path, iterations: int) -> str:
    account = account_iterations(read_metrics(run_dir), 6, iterations)
    return (
        f"{account.recorded} iterations, {'each once' if account.exactly_once else 'NOT each once'}"
    )


def nothing_left(run: LocalRun) -> str:
    alive = [p for p in [*run.celery_pids, run.redis_pid or 0] if p and process_exists(p)]
    return "no process left" if not alive else f"{len(alive)} processes LEFT"


# the cases ---------------------------------------------------------------------------------------
def launcher_killed_then_resumed() -> Outcome:
    bench, began = Bench("resume"), time.monotonic()
    up = bench.start("up", *UP, "--iterations", "300", "--json")
    run = bench.run()
    bench.progress(run, 20)
    up.send_signal(signal.SIGKILL)
    up.communicate()
    result = bench.mpls("up", "--resume", run.run_id, "--json")
    check = f"{exactly_once(Path(run.run_dir), 300)}; {nothing_left(run)}"
    return outcome("`kill -9` of `mpls up`, then `mpls up --resume RUN`", result, check, began)


def launcher_killed_then_down() -> Outcome:
    bench, began = Bench("orphans"), time.monotonic()
    up = bench.start("up", *UP, "--iterations", "100000", "--launcher-grace", "10", "--json")
    run = bench.run()
    bench.progress(run, 5)
    up.send_signal(signal.SIGKILL)
    up.communicate()
    killed = time.monotonic()
    # the grace (10 s), then Celery's warm shutdown: the running slice ends (≤ 15 s), else SIGKILL
    while any(process_exists(p) for p in run.celery_pids) and time.monotonic() - killed < 90:
        time.sleep(0.5)
    orphans = [p for p in run.celery_pids if process_exists(p)]
    stopped = (
        f"stopped {time.monotonic() - killed:.0f} s after the kill"
        if not orphans
        else (f"{len(orphans)} still alive 90 s after the kill")
    )
    result = bench.mpls("down", run.run_id)
    check = f"Celery processes {stopped}; after down: {nothing_left(run)}"
    code, _, err, hung = result
    summary = orjson.loads((Path(run.run_dir) / "summary.json").read_bytes())
    return outcome("`kill -9` of `mpls up`, no resume: grace, then `mpls down RUN`",
                   (code, orjson.dumps(summary).decode(), err, hung), check, began)  # fmt: skip


def disk_full() -> Outcome:
    bench, began = Bench("disk"), time.monotonic()
    run_dir = bench.dir / "runs" / "run-diskfull"
    run_dir.mkdir(parents=True)
    (run_dir / METRICS).symlink_to("/dev/full")  # ENOSPC on every write
    result = bench.mpls("up", *UP, "--iterations", "300", "--run-id", "diskfull", "--json")
    return outcome("disk full under the run directory", result, "summary printed", began)


def redis_refuses_writes(lift_after: float | None) -> Callable[[], Outcome]:
    def case() -> Outcome:
        bench, began = Bench("misconf"), time.monotonic()
        up = bench.start("up", *UP, "--iterations", "150", "--resource-wait", "20", "--json")
        run = bench.run()
        bench.progress(run, 5)
        client = redis.Redis.from_url(run.redis_url)
        folder = str(client.config_get("dir")["dir"])
        client.config_set("save", "3600 1")
        client.config_set("dir", "/proc/self")  # a snapshot that cannot be written: MISCONF
        client.bgsave()
        if lift_after is not None:
            time.sleep(lift_after)
            client.config_set("dir", folder)
            client.bgsave()
        try:
            out, err = up.communicate(timeout=300)
            result = (up.returncode, out, err, False)
        except subprocess.TimeoutExpired:
            up.kill()
            result = (None, "", "", True)
        summary = orjson.loads(result[1]) if result[1].strip().startswith("{") else {}
        pauses = summary.get("pauses", [])
        check = f"pauses {[(p['cause'].split()[0], p['seconds']) for p in pauses]}; restarts {summary.get('celery_restarts')}"
        what = "lifted after 8 s" if lift_after else "for good"
        return outcome(f"Redis refuses writes (MISCONF) {what}", result, check, began)

    return case


def hostile_heads_and_records() -> Outcome:
    bench, began = Bench("hostile"), time.monotonic()
    up = bench.start("up", *UP, "--iterations", "150", "--json")
    run = bench.run()
    bench.progress(run, 5)
    keys, client = RunKeys(run.run_id), redis.Redis.from_url(run.redis_url)
    client.set(keys.head(1), b"99999999999")
    client.set(keys.head(2), orjson.dumps({"version": 10**12, "g": [0.0] * 5, "t": 1.0}))
    forged = IterationRecord("mpls", 0, 99999, 9.0, 100000, 0.1, {}, 1e12, 0.0, 0.0, 5)
    client.xadd(keys.events(1), {"r": to_json(forged)})  # worker 1 speaking for worker 0
    out, err = up.communicate(timeout=300)
    summary = orjson.loads(out)
    check = f"{exactly_once(Path(run.run_dir), 150)}; refused {summary['refused']['counts']}"
    return outcome("garbage head, head at version 10¹², record in another's name", (up.returncode, out, err, False), check, began)  # fmt: skip


def bad_input(name: str, *args: str) -> Callable[[], Outcome]:
    def case() -> Outcome:
        bench, began = Bench("input"), time.monotonic()
        return outcome(name, bench.mpls(*args, timeout=120), "nothing started", began)

    return case


CASES: list[Callable[[], Outcome]] = [
    launcher_killed_then_resumed,
    launcher_killed_then_down,
    disk_full,
    redis_refuses_writes(lift_after=None),
    redis_refuses_writes(lift_after=8.0),
    hostile_heads_and_records,
    bad_input("`--lr inf`", "up", *UP, "--lr", "inf"),
    bad_input("`--config /bin/ls`", "up", "--config", "/bin/ls"),
    bad_input("`mpls tui` with a 10,000-character argument", "tui", "x" * 10_000),
    bad_input("`mpls report` with a 10,000-character argument", "report", "x" * 10_000),
    bad_input("`mpls down no-such-run`", "down", "no-such-run"),
    bad_input("a run in which nobody trains", "up", *UP, "--no-local-workers", "--until", "5s"),
]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run the cases whose name contains this")
    args = parser.parse_args(argv)
    print("| case | ended | exit | error line | traceback | hung | check | s |")
    print("|---|---|---|---|---|---|---|---|")
    for case in CASES:
        if args.only and args.only not in getattr(case, "__qualname__", ""):
            continue
        row = case()
        print(f"| {row.case} | {row.ended} | {row.exit} | {'; '.join(row.errors) or '—'} | "
              f"{'yes' if row.traceback else 'no'} | {'yes' if row.hung else 'no'} | {row.check} | "
              f"{row.seconds:.0f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
