"""End-to-end runs on a real Redis with real `celery worker` processes."""

import os
import signal

import orjson
import pytest
import redis
import torch

from mpls_celery.telemetry.records import IterationRecord, ProbeRecord
from mpls_celery.telemetry.rundir import read_metrics
from mpls_celery.telemetry.states import RunState
from mpls_celery.telemetry.trace import TRACE, Trace
from tests.conftest import celery_worker
from tests.runtime.helpers import start_run

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_three_workers_complete_and_learn(redis_url, tmp_path):
    run = start_run(redis_url, tmp_path, iterations=25)
    summary = run.join()
    assert summary["reason"] == "every worker finished"
    assert [w["iteration"] for w in summary["workers"]] == [25, 25, 25]
    assert summary["final_mean_acc"] > 0.3  # chance is 0.1
    store = run.store
    assert [h.version for h in store.snapshots.heads([0, 1, 2])] == [25, 25, 25]
    records = run.iterations()
    assert len(records) == 75
    assert sorted((r.worker, r.k) for r in records) == [(w, k) for w in range(3) for k in range(25)]
    assert any(r.plan for r in records)
    for r in records:
        assert set(r.plan) <= {0, 1, 2} - {r.worker}
    on_disk = [
        r
        for r in read_metrics(tmp_path / "runs" / f"run-{run.request.run_id}")
        if isinstance(r, IterationRecord)
    ]
    assert len(on_disk) == 75
    # every transfer is recorded per link ([bytes, seconds, start]), and the run leaves its trace
    for r in on_disk:
        assert set(r.links or {}) == set(r.plan)
        assert all(b > 0 and s >= 0 and 0 <= t <= r.t for b, s, t in (r.links or {}).values())
    trace = Trace.from_json((tmp_path / "runs" / f"run-{run.request.run_id}" / TRACE).read_bytes())
    assert len(trace.iterations) == 75
    assert len(trace.transfers) == sum(len(r.plan) for r in on_disk)
    # every link was probed once, alone (all probes ended before the first pull began), and the
    # probed speeds are what the workers planned with to the end
    probes = [r for r in read_metrics(run.request.settings.runs_dir / f"run-{run.request.run_id}")
              if isinstance(r, ProbeRecord)]  # fmt: skip
    assert sorted((r.worker, p) for r in probes for p in r.links) == [
        (w, p) for w in range(3) for p in range(3) if p != w
    ]
    first_pull = min(start for r in on_disk for _, _, start in (r.links or {}).values())
    assert max(start + s for r in probes for _, s, start in r.links.values()) <= first_pull
    assert len(trace.probes) == 6
    for r in probes:
        assert store.nodes.links(r.worker) == {p: b / s for p, (b, s, _) in r.links.items()}
    # Old versions are collected: at most keep_versions (2) per worker stay in Redis.
    keys = redis.Redis.from_url(redis_url).scan_iter(match=store.keys.everything)
    layer_keys = [k for k in keys if b":layer:" in k]
    assert len(layer_keys) <= 3 * 2 * 2


def test_sigkill_of_a_slice_process_loses_at_most_one_iteration(redis_url, tmp_path):
    run = start_run(redis_url, tmp_path, iterations=30, slice_seconds=2.0, lease_seconds=2.0)
    store = run.store
    run.wait_until(lambda: store.nodes.state(1).k >= 5, what="worker 1 at k>=5")
    pid = store.nodes.state(1).pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    summary = run.join()
    assert [w["iteration"] for w in summary["workers"]] == [30, 30, 30]
    ks = [r.k for r in run.iterations() if r.worker == 1]
    assert len(set(ks)) >= 29  # the iteration in flight may be lost, nothing else
    assert store.snapshots.head(1).version == 30


def test_pull_pool_killed_then_restored(redis_url, tmp_path):
    run = start_run(redis_url, tmp_path, local_workers=False, iterations=400, pull_deadline=0.5)
    store = run.store
    log = tmp_path / "celery.log"
    with celery_worker(redis_url, queues="mpls.nodes", concurrency=3, log_path=log):
        with celery_worker(redis_url, queues="mpls.pull", pool="threads", concurrency=8) as pull:
            run.wait_until(lambda: len(run.iterations()) > 30, what="30 iterations")
            pull.send_signal(signal.SIGKILL)
            pull.wait()
        # Records reach the run directory a little after their iteration ends: an iteration is
        # "after the kill" by its number, not by when its record arrives.
        at_kill = {w: store.nodes.state(w).k for w in range(3)}

        def after_kill() -> list:
            return [r for r in run.iterations() if r.k > at_kill[r.worker] + 2]

        run.wait_until(lambda: len(after_kill()) >= 25, what="training on")
        assert all(r.plan == {} for r in after_kill()), "no pool: pulls time out, training goes on"
        restored_at = len(run.iterations())
        with celery_worker(redis_url, queues="mpls.pull", pool="threads", concurrency=8):
            run.wait_until(
                lambda: any(r.plan for r in run.iterations()[restored_at + 5 :]),
                what="pulls again",
            )
            store.run.set_status(RunState.STOPPING, reason="test done")
            run.join()


def test_plain_celery_worker_alone_runs_the_whole_run(redis_url, tmp_path):
    run = start_run(redis_url, tmp_path, local_workers=False, iterations=15)
    with celery_worker(redis_url, queues=None, concurrency=None, pool=None):
        summary = run.join()
    assert [w["iteration"] for w in summary["workers"]] == [15, 15, 15]


def test_emulated_network_delays_pulls_and_stretches_compute(redis_url, tmp_path):
    """--network paper30: pulls take bytes / profile speed, training is stretched by 1 / speed,
    and the scheduler sees the profile's speeds (nothing is measured)."""
    from tests.runtime.helpers import SMALL

    cfg = SMALL.with_overrides(**{"network.profile": "paper30"})
    run = start_run(redis_url, tmp_path, config=cfg, iterations=6)
    summary = run.join()
    assert [w["iteration"] for w in summary["workers"]] == [6, 6, 6]
    records = run.iterations()
    pulled = [r for r in records if r.plan]
    assert pulled
    # paper30 workers 0..2 of 3 sit in rooms A/B/C; a C-room link is 7.5 Mbit/s: an MLP fc1 copy
    # (~200 kB) takes > 0.1 s there, far above loopback's < 5 ms.
    assert max(r.pull_seconds for r in pulled) > 0.1
    assert run.store.nodes.links(0) == {}  # under emulation nothing is measured


def test_the_iteration_options_run_in_the_runtime_too(redis_url, tmp_path):
    """Every non-default option of spec "Iteration semantics" at once, with the paper30
    emulation (so `links: shared` stretches the emulated pulls)."""
    from tests.runtime.helpers import SMALL

    cfg = SMALL.with_overrides(
        mixing="train-then-average",
        pull_sees="published",
        progress_window="version",
        links="shared",
        **{"network.profile": "paper30"},
    )
    other = cfg.with_overrides(mixing="average-then-step", pull_sees="trained")
    for config in (cfg, other):
        run = start_run(redis_url, tmp_path / config.mixing, config=config, iterations=6)
        summary = run.join()
        assert [w["iteration"] for w in summary["workers"]] == [6, 6, 6]
        assert any(r.plan for r in run.iterations())


def test_a_worker_that_builds_other_initial_weights_refuses_to_join(redis_url, raw, tmp_path):
    """The launcher records a hash of the model's initial weights; a host whose code builds
    others (another version of the user's model module) fails with one line, and so does the
    run — nothing is averaged with mismatched tensors."""
    run = start_run(redis_url, tmp_path, local_workers=False, iterations=5)
    keys = run.store.keys
    run.wait_until(lambda: raw.exists(keys.config), what="the run's config")
    doc = orjson.loads(raw.get(keys.config))
    raw.set(keys.config, orjson.dumps({**doc, "model_hash": "0123456789abcdef"}))
    with celery_worker(redis_url, queues="mpls.nodes,mpls.pull", concurrency=2):
        summary = run.join(timeout=120)
    assert summary["failed"]
    assert "builds other initial weights" in summary["reason"], summary["reason"]
    assert any(w["state"] == "failed" for w in summary["workers"])


@pytest.mark.parametrize(
    "device",
    [
        "cpu",  # LeNet-5 channels-last there: codec, mixing and evaluation across processes
        pytest.param(
            "cuda",
            marks=pytest.mark.skipif(
                not torch.cuda.is_available(), reason="no CUDA device on this machine"
            ),
        ),
    ],
)
def test_six_lenet5_workers_learn_on_one_device(redis_url, tmp_path, device):
    """`mpls up --workers 6 --model lenet5 --device D`: on CUDA every worker's process on one
    GPU, each within its share of the memory."""
    from tests.runtime.helpers import SMALL

    config = SMALL.with_overrides(workers=6, model="lenet5", device=device)
    # 60 iterations: 0.59-0.69 here, where 40 gave 0.38-0.55 and once, in a full serial run, 0.25
    summary = start_run(redis_url, tmp_path, config=config, iterations=60).join()
    assert summary["reason"] == "every worker finished", summary["reason"]
    assert summary["final_mean_acc"] > 0.3, summary
