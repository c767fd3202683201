"""`mpls up --detach` answers once the run has started, or fails with the launcher's own error
and exit status when it cannot start (not in a log nobody reads)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from mpls_celery.runtime.backend.pids import process_exists
from mpls_celery.telemetry.rundir import SUMMARY
from tests.runtime.processes import _head_version, gone, local_env, local_runs, mpls, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TINY = ("--workers", "2", "--model", "mlp", "--topology", "full")


def test_a_run_that_cannot_start_fails_the_command_with_its_error(tmp_path):
    env = local_env(tmp_path)
    done = mpls(env, "up", *TINY, "--model", "nosuch_module:net", "--detach")
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith("error: model 'nosuch_module:net': no module named 'nosuch_module'")
    )
    assert "started" not in done.stdout
    assert local_runs(tmp_path) == []


@pytest.fixture
def detached(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The test's environment; a launcher it detached that outlives a failed test is stopped
    (SIGTERM: it stops its processes and its Redis), never left to burn the suite's cores."""
    env = local_env(tmp_path)
    yield env
    for run in local_runs(tmp_path):
        if run.launcher_alive:
            os.kill(run.launcher_pid, signal.SIGTERM)
            wait_for(lambda: gone(run.launcher_pid), 60, "the launcher to stop")  # noqa: B023


def test_the_command_returns_once_the_run_is_registered_and_down_ends_it(tmp_path, detached):
    env = detached
    done = mpls(env, "up", *TINY, "--iterations", "100000", "--detach", "--json", timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    answer = orjson.loads(done.stdout)
    [run] = local_runs(tmp_path)  # there already: no waiting for it here
    assert answer["state"] == "started" and answer["run_id"] == run.run_id
    assert answer["launcher_pid"] == run.launcher_pid and run.launcher_alive and run.celery_pids
    wait_for(lambda: _head_version(run, 1) >= 3, 120, "worker 1 at version 3")
    down = mpls(env, "down", run.run_id, timeout=120)
    assert down.returncode == 0, down.stderr[-2000:]
    wait_for(lambda: gone(run.launcher_pid), 120, "the launcher to end the run")
    summary = orjson.loads((Path(run.run_dir) / SUMMARY).read_bytes())
    assert summary["reason"] == "run marked stopping" and summary["workers"][1]["iteration"] >= 3
    assert not any(process_exists(p) for p in run.celery_pids)
