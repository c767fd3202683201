"""When something runs out: a full disk under the run directory, Redis refusing writes (its AOF or
RDB on a full disk: MISCONF), a run in which nobody trains, training that diverges, a slice that
fails the same way every time. One `error:` line naming what ran out and where, a summary as
complete as what was stored, a non-zero exit, in bounded time — and a pause that ends by itself
is a pause in the summary, not a failure and not a crash."""

from __future__ import annotations

import contextlib
import re
import textwrap
import time
from collections.abc import Iterator

import orjson
import pytest
import redis

from mpls_celery.runtime.backend.embedded_redis import EmbeddedRedis
from mpls_celery.telemetry.rundir import METRICS
from tests.runtime.helpers import start_run
from tests.runtime.processes import TINY, local_env, mpls, run_processes

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_a_full_disk_under_the_run_directory_is_one_line_and_exit_1(tmp_path):
    """/dev/full answers every write with ENOSPC, as a full file system does."""
    env = local_env(tmp_path)
    run_dir = tmp_path / "runs" / "run-diskfull"
    run_dir.mkdir(parents=True)
    (run_dir / METRICS).symlink_to("/dev/full")
    done = mpls(env, "up", *TINY, "--iterations", "500", "--run-id", "diskfull", timeout=180)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    lines = error_lines(done.stderr)
    assert len(lines) == 1 and "disk full" in lines[0] and METRICS in lines[0], done.stderr
    summary = orjson.loads(done.stdout)  # --json: the summary, as complete as it could be
    assert summary["failed"] and "No space left on device" in summary["reason"]
    assert (run_dir / "summary.json").exists()
    assert run_processes("diskfull") == []


@contextlib.contextmanager
def refusing_writes(server: EmbeddedRedis) -> Iterator[redis.Redis]:
    """MISCONF: Redis stops taking writes once it cannot persist (an RDB it cannot write, as
    on a full disk). Lifted on exit: its folder back, one snapshot that works."""
    client = redis.Redis.from_url(server.url)
    folder = client.config_get("dir")["dir"]
    client.config_set("save", "3600 1")
    client.config_set("dir", "/proc/self")  # nothing can be created there
    client.bgsave()
    deadline = time.monotonic() + 10
    while client.info("persistence")["rdb_last_bgsave_status"] != "err":
        assert time.monotonic() < deadline, "the snapshot never failed"
        time.sleep(0.1)
    try:
        yield client
    finally:
        client.config_set("dir", folder)
        with contextlib.suppress(redis.exceptions.ResponseError):  # one already running
            client.bgsave()


def wait_bgsave_ok(client: redis.Redis) -> None:
    deadline = time.monotonic() + 20
    while client.info("persistence")["rdb_last_bgsave_status"] != "ok":
        assert time.monotonic() < deadline, "the snapshot never succeeded again"
        time.sleep(0.2)


def test_redis_refusing_writes_fails_the_run_after_its_deadline(tmp_path):
    with EmbeddedRedis(data_dir=tmp_path / "redis") as server:
        run = start_run(server.url, tmp_path, iterations=100_000, resource_wait=3.0)
        run.wait_until(lambda: run.store.nodes.state(0).k >= 3, what="worker 0 at k >= 3")
        began = time.monotonic()
        with refusing_writes(server):
            summary = run.join(timeout=120)
            took = time.monotonic() - began
    assert summary["failed"] and "refused writes" in summary["reason"]
    assert "MISCONF" in summary["reason"], summary["reason"]
    assert summary["pauses"] and summary["pauses"][0]["cause"].startswith("MISCONF")
    assert took < 100, "the run ended at its deadline, not never"


def test_a_pause_that_ends_is_in_the_summary_and_spends_no_restart(tmp_path):
    with EmbeddedRedis(data_dir=tmp_path / "redis") as server:
        run = start_run(server.url, tmp_path, iterations=50, resource_wait=60.0)
        run.wait_until(lambda: run.store.nodes.state(0).k >= 3, what="worker 0 at k >= 3")
        with refusing_writes(server) as client:
            time.sleep(4.0)
        wait_bgsave_ok(client)
        summary = run.join(timeout=240)
    assert summary["reason"] == "every worker finished" and not summary["failed"]
    assert [w["iteration"] for w in summary["workers"]] == [50, 50, 50]
    pauses = [p for p in summary["pauses"] if p["cause"].startswith("MISCONF")]
    assert pauses and pauses[0]["seconds"] >= 1.0, summary["pauses"]
    assert summary["celery_restarts"] == 0


def test_a_run_in_which_nobody_trains_exits_non_zero(tmp_path):
    env = local_env(tmp_path)
    done = mpls(env, "up", *TINY, "--no-local-workers", "--until", "3s", timeout=120)
    assert done.returncode == 1
    assert error_lines(done.stderr) == [
        f"error: run {orjson.loads(done.stdout)['run_id']}: time limit reached; "
        "no worker completed an iteration"
    ]


def test_training_that_diverges_fails_its_worker_and_ends_the_run(tmp_path):
    env = local_env(tmp_path)
    args = ("--workers", "2", "--model", "lenet5", "--dataset", "digits", "--topology", "full",
            "--lr", "1000", "--iterations", "300", "--json")  # fmt: skip
    done = mpls(env, "up", *args, timeout=180)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    summary = orjson.loads(done.stdout)
    [line] = error_lines(done.stderr)
    assert line.startswith(f"error: run {summary['run_id']}: worker "), line
    assert " diverged at iteration " in line and "its training loss is " in line
    assert summary["failed"] and any(w["state"] == "failed" for w in summary["workers"])
    assert max(w["iteration"] for w in summary["workers"]) < 300
    assert run_processes(summary["run_id"]) == []


FLAKY = """
import numpy as np
from torch import nn

STEPS = 0  # training forward passes in this process


class Flaky(nn.Module):
    def __init__(self, features, classes):
        super().__init__()
        self.linear = nn.Linear(features, classes)

    def forward(self, x):
        global STEPS
        STEPS += self.training
        if STEPS > 12:
            raise RuntimeError("a bug that every batch after the 12th hits")
        return self.linear(x.flatten(1))


def model(input_shape, num_classes):
    return Flaky(int(np.prod(input_shape)), num_classes)
"""


def test_a_slice_that_fails_the_same_way_every_time_fails_its_worker(tmp_path):
    """Not an error the runtime knows will not pass (a bug in the user's model, say): the chain
    goes on from Redis, until three slices in a row have failed at one iteration."""
    (tmp_path / "flaky.py").write_text(textwrap.dedent(FLAKY))
    env = local_env(tmp_path)
    args = ("--model", "flaky:model", "--import", str(tmp_path), "--iterations", "300")
    done = mpls(env, "up", *TINY, *args, timeout=180)
    assert done.returncode == 1, done.stderr[-3000:]
    summary = orjson.loads(done.stdout)
    lines = error_lines(done.stderr)
    assert len(lines) == 1, done.stderr[-3000:]
    assert re.search(
        r"worker \d failed: 3 slices in a row failed at iteration \d+: RuntimeError: a bug that "
        r"every batch after the 12th hits \(on host ",
        lines[0],
    ), lines[0]
    assert max(w["iteration"] for w in summary["workers"]) < 300
    assert run_processes(summary["run_id"]) == []
