"""A run outlives its launcher: after `kill -9` of `mpls up`, its processes notice (and stop after
their grace period), local commands still find the run, `mpls up --resume RUN` goes on to the end
with every iteration recorded exactly once, and `mpls down RUN` leaves nothing of it running."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import orjson
import pytest

from mpls_celery.runtime.backend.pids import process_exists
from mpls_celery.telemetry.completeness import account_iterations
from mpls_celery.telemetry.rundir import METRICS, SUMMARY, read_metrics
from mpls_celery.telemetry.trace import TRACE
from tests.runtime.processes import (
    TINY,
    _head_version,
    local_env,
    local_runs,
    mpls,
    mpls_up,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def killed_launcher(tmp_path: Path, *args: str):  # type: ignore[no-untyped-def]
    """`mpls up` SIGKILLed once its workers have moved; its local run as it was."""
    env = local_env(tmp_path)
    up = mpls_up(env, *TINY, *args)
    run = wait_for(lambda: local_runs(tmp_path)[0], 120, "the run's local file")
    wait_for(lambda: _head_version(run, 1) >= 5, 120, "worker 1 at version 5")
    run = local_runs(tmp_path)[0]  # with its Celery processes' pids
    os.kill(up.pid, signal.SIGKILL)
    up.communicate(timeout=30)
    return env, run


def run_pids(run) -> list[int]:  # type: ignore[no-untyped-def]
    return [*run.celery_pids, *([run.redis_pid] if run.redis_pid else [])]


def test_kill_9_then_resume_completes_with_every_iteration_exactly_once(tmp_path):
    env, run = killed_launcher(tmp_path, "--iterations", "150")
    listed = {row["run"]: row for row in orjson.loads(mpls(env, "runs", "--json").stdout)}
    assert listed[run.run_id]["launcher"] == "dead"
    assert orjson.loads(mpls(env, "status", run.run_id, "--json").stdout)["launcher"] == "dead"

    resumed = mpls(env, "up", "--resume", run.run_id, "--json", timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = orjson.loads(resumed.stdout)
    assert summary["reason"] == "every worker finished" and not summary["failed"]
    assert [w["iteration"] for w in summary["workers"]] == [150, 150]
    assert summary["resumed"], "the summary says when a launcher re-attached"
    run_dir = Path(summary["run_dir"])
    account = account_iterations(read_metrics(run_dir), 2, 150)
    assert account.exactly_once, "no record lost, none doubled"
    assert (run_dir / SUMMARY).exists() and (run_dir / TRACE).exists()
    assert not any(process_exists(p) for p in run_pids(run))
    assert local_runs(tmp_path) == []


def test_without_a_launcher_the_processes_stop_and_mpls_down_ends_the_run(tmp_path):
    # Short slices and pull waits: a warm shutdown lets the slice in flight end, and with the
    # pull process gone first its last pull waits out the deadline.
    quick_stop = ("--launcher-grace", "3", "--slice-seconds", "2", "--pull-deadline", "1")
    env, run = killed_launcher(tmp_path, "--iterations", "100000", *quick_stop)
    assert run.celery_pids and all(process_exists(p) for p in run.celery_pids)
    wait_for(lambda: not any(process_exists(p) for p in run.celery_pids), 90, "orphans to stop")
    assert process_exists(run.redis_pid), "its Redis keeps the run's state for a resume"
    down = mpls(env, "down", run.run_id, timeout=120)
    assert down.returncode == 0, down.stderr[-3000:]
    assert "its launcher had died" in down.stdout
    assert not any(process_exists(p) for p in run_pids(run))
    summary = orjson.loads((Path(run.run_dir) / SUMMARY).read_bytes())
    assert summary["reason"] == "mpls down" and summary["workers"][1]["iteration"] >= 5
    assert (Path(run.run_dir) / METRICS).exists() and local_runs(tmp_path) == []
