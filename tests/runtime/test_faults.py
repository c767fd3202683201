"""Fault injection as an operator meets faults: SIGKILL, SIGSTOP, a dead Redis, a dead host and
corrupt keys, against real Redis servers and real Celery processes. Every wait is bounded; no test
asserts a wall-clock time, only outcomes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from mpls_celery.runtime.backend.embedded_redis import EmbeddedRedis
from mpls_celery.telemetry.records import IterationRecord
from mpls_celery.telemetry.states import RunState, WorkerState
from tests.conftest import REPO, worker_env
from tests.runtime.helpers import start_run, stream_records
from tests.runtime.processes import (
    TINY,
    _head_version,
    gone,
    local_env,
    local_runs,
    mpls,
    mpls_up,
    run_processes,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def progress(run, worker: int) -> int:  # type: ignore[no-untyped-def]
    return run.store.nodes.state(worker).k


def settled_head(store, worker: int):  # type: ignore[no-untyped-def]
    """The worker's head once its processes are frozen: a publish they sent just before is still
    applied by Redis, so read until two reads 0.3 s apart agree."""
    head = store.snapshots.head(worker)
    for _ in range(20):
        time.sleep(0.3)
        again = store.snapshots.head(worker)
        if again.version == head.version:
            return head
        head = again
    raise AssertionError(f"worker {worker}'s head still moves with its processes frozen")


def iteration_keys(store) -> list[tuple[int, int]]:  # type: ignore[no-untyped-def]
    return [(r.worker, r.k) for r in stream_records(store) if isinstance(r, IterationRecord)]


# 1 -------------------------------------------------------------------------------------------
def test_two_local_runs_each_own_their_embedded_redis(tmp_path):
    """The first run ending (and stopping its Redis) must not stall the second; both stay
    visible to `mpls runs` and reachable by `mpls down`. One worker each: what is under test is
    the launchers and their Redis servers, and two runs training on end share the cores."""
    env = local_env(tmp_path)
    one_worker = ("--workers", "1", "--model", "mlp", "--json")
    first = mpls_up(env, *one_worker, "--iterations", "100000")
    one = wait_for(lambda: local_runs(tmp_path)[0], 120, "the first run's local file")
    second = mpls_up(env, *one_worker, "--iterations", "100000")
    two = wait_for(
        lambda: next(r for r in local_runs(tmp_path) if r.run_id != one.run_id), 120, "the second"
    )
    assert one.redis_url != two.redis_url, "each run has its own Redis"
    listed = mpls(env, "runs", "--json")
    assert {row["run"] for row in orjson.loads(listed.stdout)} == {one.run_id, two.run_id}
    wait_for(lambda: _head_version(one, 0) >= 1, 120, "the first run training")
    assert mpls(env, "down", one.run_id).returncode == 0
    out1, _ = first.communicate(timeout=120)
    assert orjson.loads(out1)["reason"] == "run marked stopping"
    at = wait_for(lambda: _head_version(two, 0), 60, "the second run's head")
    wait_for(lambda: _head_version(two, 0) > at + 20, 60, "the second run going on alone")
    status = orjson.loads(mpls(env, "status", "--json").stdout)
    assert status["run"] == two.run_id
    assert mpls(env, "down").returncode == 0  # the newest active run: the second
    out2, err2 = second.communicate(timeout=120)
    assert second.returncode == 0, err2[-2000:]
    assert orjson.loads(out2)["reason"] == "run marked stopping"
    assert local_runs(tmp_path) == []


# 2 -------------------------------------------------------------------------------------------
def test_killed_embedded_redis_is_restarted_from_its_aof_and_the_run_completes(tmp_path):
    env = local_env(tmp_path)
    up = mpls_up(env, *TINY, "--iterations", "80")
    run = wait_for(lambda: local_runs(tmp_path)[0], 120, "the run's local file")
    assert run.embedded and run.redis_pid
    wait_for(lambda: _head_version(run, 1) >= 10, 120, "worker 1 at version 10")
    os.kill(run.redis_pid, signal.SIGKILL)
    out, err = up.communicate(timeout=240)
    assert up.returncode == 0, err[-2000:]
    summary = orjson.loads(out)
    assert summary["reason"] == "every worker finished"
    assert [w["iteration"] for w in summary["workers"]] == [80, 80]


def test_embedded_redis_that_cannot_come_back_ends_the_run_with_one_line_and_exit_1(tmp_path):
    env = local_env(tmp_path)
    up = mpls_up(env, *TINY, "--iterations", "500")
    run = wait_for(lambda: local_runs(tmp_path)[0], 120, "the run's local file")
    wait_for(lambda: _head_version(run, 0) >= 3, 120, "worker 0 at version 3")
    os.kill(up.pid, signal.SIGSTOP)  # hold the launcher while its Redis dies for good
    try:
        os.kill(run.redis_pid, signal.SIGKILL)
        wait_for(lambda: gone(run.redis_pid), 10, "Redis to exit")
        for path in (tmp_path / "state" / "redis" / run.run_id).rglob("*"):
            if path.is_file():
                path.write_bytes(b"this is not an append-only file\n")  # it cannot load this
    finally:
        os.kill(up.pid, signal.SIGCONT)
    out, err = up.communicate(timeout=180)
    assert up.returncode == 1
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "embedded Redis died" in lines[0], err[-2000:]
    assert "Traceback" not in err
    summary = orjson.loads(out)
    assert summary["failed"] and Path(summary["run_dir"], "summary.json").exists()
    assert run_processes(run.run_id) == []


# 3 -------------------------------------------------------------------------------------------
def test_a_worker_whose_own_snapshot_is_corrupt_resumes_from_a_kept_version(
    redis_url, raw, tmp_path
):
    run = start_run(redis_url, tmp_path, iterations=40, slice_seconds=2.0)
    store = run.store
    run.wait_until(lambda: progress(run, 1) >= 5, what="worker 1 at k >= 5")
    # Freeze every slice process, not only the one worker 1's state names: a slice ends every
    # 2 s and the next may run in another process, which would move the head on.
    frozen = [proc.pid for proc in run_processes(run.request.run_id)]
    assert frozen
    for frozen_pid in frozen:
        os.kill(frozen_pid, signal.SIGSTOP)
    try:
        head = settled_head(store, 1)
        raw.set(store.keys.layer(1, 0, head.version), b"not a snapshot")
        pid = store.nodes.state(1).pid  # holds worker 1's node at that head, in memory
        assert pid is not None
        os.kill(pid, signal.SIGKILL)  # its slice is redelivered and must load that version
    finally:
        for frozen_pid in frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(frozen_pid, signal.SIGCONT)
    summary = run.join(timeout=300)
    assert [w["iteration"] for w in summary["workers"]] == [40, 40, 40]
    recovered = summary["workers"][1]["recovered"]
    assert recovered and f"version {head.version - 1}" in recovered, recovered


# 4 -------------------------------------------------------------------------------------------
def test_a_dead_host_is_declared_dead_and_the_live_workers_end_the_run(redis_url, tmp_path):
    run = start_run(
        redis_url, tmp_path, local_workers=False, iterations=300, queue_mode="per-worker",
        peer_timeout=4.0, slice_seconds=2.0, lease_seconds=2.0,
    )  # fmt: skip
    node = (sys.executable, "-m", "mpls_celery", "worker", "--concurrency", "8", "--nodes")
    env = worker_env(redis_url)
    host_a = subprocess.Popen([*node, "0-1"], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    host_b = subprocess.Popen([*node, "2"], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        run.wait_until(lambda: progress(run, 2) >= 3, what="worker 2 at k >= 3")
        os.killpg(host_b.pid, signal.SIGKILL)  # host B is gone for good
        summary = run.join(timeout=300)
    finally:
        for proc in (host_a, host_b):
            proc.kill()
            proc.wait()
    assert summary["reason"] == "every live worker finished"
    assert [d["worker"] for d in summary["dead"]] == [2]
    assert [w["state"] for w in summary["workers"]] == ["finished", "finished", "dead"]
    assert [w["iteration"] for w in summary["workers"][:2]] == [300, 300]
    assert summary["workers"][2]["iteration"] < 300
    assert run.store.nodes.state(2).state is WorkerState.DEAD


# 5 -------------------------------------------------------------------------------------------
def test_a_killed_slice_process_is_replaced_long_before_its_lease_expires(redis_url, tmp_path):
    """The redelivered slice finds the lease held by a process that no longer exists and takes
    it over at once, instead of waiting out the lease (60 s here)."""
    run = start_run(redis_url, tmp_path, iterations=400, lease_seconds=60.0)
    run.wait_until(lambda: progress(run, 1) >= 5, what="worker 1 at k >= 5")
    pid = run.store.nodes.state(1).pid
    at = progress(run, 1)
    os.kill(pid, signal.SIGKILL)
    run.wait_until(lambda: progress(run, 1) > at + 5, timeout=30, what="worker 1 moving again")
    run.store.run.set_status(RunState.STOPPING, reason="test done")
    run.join()


def test_a_killed_celery_parent_is_replaced_within_a_lease(redis_url, tmp_path):
    """The whole slice worker dies (its messages sit unacked for the visibility timeout): the
    launcher restarts it and its watchdog re-sends every slice once their leases lapse."""
    # a long slice budget: the watchdog must not wait for it (it used to wait 2 leases + 1 slice)
    run = start_run(redis_url, tmp_path, iterations=400, lease_seconds=3.0, slice_seconds=60.0)
    run.wait_until(lambda: min(progress(run, w) for w in range(3)) >= 5, what="all at k >= 5")
    parents = [
        p
        for p in run_processes(run.request.run_id)
        if "nodes-" in " ".join(p.cmdline()) and os.getpgid(p.pid) == p.pid  # the group leader
    ]
    assert len(parents) >= 1
    at = [progress(run, w) for w in range(3)]
    for parent in parents:
        os.killpg(parent.pid, signal.SIGKILL)
    run.wait_until(
        lambda: all(progress(run, w) > at[w] + 3 for w in range(3)),
        timeout=60,
        what="every worker moving again",
    )
    run.store.run.set_status(RunState.STOPPING, reason="test done")
    run.join()


# 7 -------------------------------------------------------------------------------------------
def test_a_kill_between_publishing_a_version_and_its_record_loses_no_record(ctx):
    from mpls_celery.runtime.worker.node import NodeRuntime
    from tests.runtime.helpers import publish_all

    publish_all(ctx)
    node = NodeRuntime(ctx, 0).resume()
    real_emit = ctx.store.events.emit

    class Killed(BaseException):
        pass

    def killed(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise Killed  # the process dies right after the publish

    ctx.store.events.emit = killed  # type: ignore[method-assign]
    with pytest.raises(Killed):
        node.iteration(lambda *a: None)
        node.flush()  # the publisher's thread met the kill
    ctx.store.events.emit = real_emit  # type: ignore[method-assign]
    assert ctx.store.snapshots.head(0).version == 1
    assert (0, 0) not in iteration_keys(ctx.store)
    NodeRuntime(ctx, 0).resume()  # the slice that takes over
    assert iteration_keys(ctx.store).count((0, 0)) == 1
    NodeRuntime(ctx, 0).resume()  # and never twice
    assert iteration_keys(ctx.store).count((0, 0)) == 1


# 8 -------------------------------------------------------------------------------------------
@contextlib.contextmanager
def run_whose_redis_dies(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A local run on a Redis of the test's own, which is killed (SIGKILL) once the run moves."""
    server = EmbeddedRedis().start()
    env = local_env(tmp_path)
    try:
        up = mpls_up(env, *TINY, "--iterations", "500", "--redis", server.url)
        run = wait_for(lambda: local_runs(tmp_path)[0], 120, "the run's local file")
        wait_for(lambda: _head_version(run, 0) >= 3, 120, "worker 0 at version 3")
        started = run_processes(run.run_id)
        server._kill()
        yield up, run, env, server.url, started
    finally:
        server.stop()


def test_sigterm_while_redis_is_gone_stops_everything_and_writes_a_summary(tmp_path):
    with run_whose_redis_dies(tmp_path) as (up, _, _, _, started):
        assert started
        time.sleep(1.0)
        up.send_signal(signal.SIGTERM)
        out, err = up.communicate(timeout=120)
    assert "Traceback" not in err, err[-3000:]
    summary = orjson.loads(out)
    assert summary["reason"].startswith("terminated (SIGTERM)")
    assert Path(summary["run_dir"], "summary.json").exists()
    assert all(gone(p.pid) for p in started)


def test_mpls_down_stops_a_local_run_whose_redis_is_gone(tmp_path):
    with run_whose_redis_dies(tmp_path) as (up, run, env, url, _):
        down = mpls(env, "down", run.run_id, "--redis", url)
        out, _ = up.communicate(timeout=120)
    assert down.returncode == 0, down.stderr
    assert "asked its launcher" in down.stdout
    assert orjson.loads(out)["reason"].startswith("terminated (SIGTERM)")
