"""Sim-to-real: a runtime run's trace round-trips, `mpls profile fit` recovers the network it was
recorded on, and `mpls sim --replay` simulates the run on that trace and reports against it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import orjson
import pytest

from mpls_celery.cli.app import main
from mpls_celery.config.profiles import load_profile
from mpls_celery.config.run_config import RunConfig
from mpls_celery.core.link_model import LinkSpeeds
from mpls_celery.core.network_profile import MBIT
from mpls_celery.telemetry.records import IterationRecord, Record
from mpls_celery.telemetry.rundir import (
    METRICS,
    append_metrics,
    read_json,
    read_metrics,
    write_manifest,
)
from mpls_celery.telemetry.trace import TRACE, Trace, read_trace, write_trace

RATES_MBIT = {(0, 1): 4.0, (0, 2): 1.0, (1, 2): 2.0}
COMPUTE = [0.1, 0.2, 0.4]  # seconds of training per iteration
NBYTES = 203_560.0  # the MLP's two layers


def alternate(w: int, k: int) -> int:
    return (w + 1 + k % 2) % 3


def fastest(w: int, k: int) -> int:
    """What MPLS does with a whole-model layer and two peers: the faster link."""
    return max((p for p in range(3) if p != w), key=lambda p: RATES_MBIT[(min(w, p), max(w, p))])


def recorded_run(  # type: ignore[no-untyped-def]
    tmp_path: Path, seconds: float = 20.0, choose=alternate, starts=(0.0, 0.0, 0.0)
) -> Path:
    """A run directory as `mpls up --until` leaves it, recorded on a known network: from its
    start until `seconds`, each worker pulls the model (its size: the MLP's) from one peer per
    iteration over a link of RATES_MBIT (log-normal noise), trains COMPUTE[w], and spends 0.05 s
    besides; one pull in ten brings nothing back."""
    cfg = RunConfig().with_overrides(workers=3, model="mlp", dataset="digits", algorithm="mpls",
                                     **{"topology.kind": "full", "training.lr": 0.05})  # fmt: skip
    run_dir = tmp_path / "run-recorded"
    run_dir.mkdir()
    write_manifest(run_dir, "runtime", cfg.model_dump(mode="json"), eval_interval=1.0,
                   options={"target_acc": 0.3, "eval_samples": 50})  # fmt: skip
    rng = np.random.default_rng(3)
    clock = list(starts)
    records: list[Record] = []
    for w in range(3):
        k = 0
        while clock[w] < seconds:
            peer = choose(w, k)
            rate = RATES_MBIT[(min(w, peer), max(w, peer))] * MBIT * math.exp(0.2 * rng.normal())
            pull = NBYTES / rate
            lost = k % 10 == 9
            start = clock[w]
            clock[w] = start + max(COMPUTE[w], pull) + 0.05
            links = {peer: [0.0, pull, start] if lost else [NBYTES, pull, start]}
            records.append(IterationRecord("mpls", w, k, round(clock[w], 4), k + 1, 1.0,
                                           {} if lost else {peer: [0, 1]}, 0.0 if lost else NBYTES,
                                           pull, COMPUTE[w], 2, links=links))  # fmt: skip
            k += 1
    append_metrics(run_dir / METRICS, records)
    return run_dir


def test_a_trace_round_trips_and_is_rebuilt_from_metrics_when_missing(tmp_path: Path):
    run_dir = recorded_run(tmp_path)
    rebuilt = read_trace(run_dir, 3)  # no trace.json yet
    records = [r for r in read_metrics(run_dir) if isinstance(r, IterationRecord)]
    lost = sum(1 for r in records if r.k % 10 == 9)
    assert len(rebuilt.iterations) == len(records) and len(rebuilt.outages) == lost
    assert len(rebuilt.transfers) == len(records) - lost
    write_trace(run_dir, rebuilt)
    assert Trace.from_json((run_dir / TRACE).read_bytes()) == rebuilt
    # the overhead is what was neither training nor moving bytes: the 0.05 s we added
    steady = [i for i in rebuilt.iterations if i.period and i.transfer]
    assert np.median([i.overhead for i in steady]) == pytest.approx(0.05, abs=1e-3)


def test_profile_fit_recovers_the_links_and_compute_the_run_was_recorded_on(tmp_path, capsys):
    run_dir = recorded_run(tmp_path)
    out = tmp_path / "fitted.yaml"
    with pytest.raises(SystemExit) as done:
        main(["profile", "fit", str(run_dir), "-o", str(out)])
    assert done.value.code in (0, None), capsys.readouterr().err
    profile = load_profile(str(out), 3)
    assert profile is not None
    for (a, b), mbit in RATES_MBIT.items():
        assert profile.base_rate[a, b] / MBIT == pytest.approx(mbit, rel=0.1)
    assert profile.compute_speed == pytest.approx([1.0, 0.5, 0.25], rel=0.01)
    assert profile.reference_step_seconds("mlp") == pytest.approx(0.1)
    assert profile.noise_sigma == pytest.approx(0.2, abs=0.06)
    records = [r for r in read_metrics(run_dir) if isinstance(r, IterationRecord)]
    lost = sum(1 for r in records if not r.plan)
    assert profile.outage_prob == pytest.approx(lost / len(records), abs=1e-4)


def test_replay_simulates_the_recorded_run_and_the_report_sets_them_side_by_side(tmp_path, capsys):
    run_dir = recorded_run(tmp_path, choose=fastest, starts=(0.0, 0.0, 4.0))
    out = tmp_path / "sims"
    with pytest.raises(SystemExit) as done:
        main(["sim", "--replay", str(run_dir), "--until", "20s", "--out", str(out), "--json"])
    assert done.value.code in (0, None), capsys.readouterr().err
    replay = next(out.iterdir())
    manifest = read_json(replay / "manifest.json")
    assert manifest["replay_of"] == str(run_dir.resolve())
    assert manifest["config"]["workers"] == 3 and manifest["options"]["record_links"]
    summary = read_json(replay / "summary.json")["algorithms"]["mpls"]
    # the replay runs each worker at the recorded pace: about as many iterations in the same time
    recorded = sum(1 for r in read_metrics(run_dir) if isinstance(r, IterationRecord))
    assert 0.8 * recorded <= summary["iterations"] <= 1.2 * recorded
    lines = [
        ln for ln in (replay / "metrics.jsonl").read_text().splitlines() if '"iteration"' in ln
    ]
    assert '"links"' in lines[-1]
    # worker 2 began 4 s late in the real run (start-up): so it does in the replay
    first = {}
    for r in read_metrics(replay):
        if isinstance(r, IterationRecord):
            first.setdefault(r.worker, r.t - max(r.compute_seconds, r.pull_seconds))
    assert first[0] < 0.5 and first[1] < 0.5 and first[2] == pytest.approx(4.0, abs=0.3), first
    batched_out = tmp_path / "batched"
    with pytest.raises(SystemExit) as done:  # the batched engine replays the same events
        main(["sim", "--replay", str(run_dir), "--until", "20s", "--engine", "batched",
              "--out", str(batched_out), "--json"])  # fmt: skip
    assert done.value.code in (0, None), capsys.readouterr().err
    batched = next(batched_out.iterdir())
    assert read_json(batched / "manifest.json")["options"]["engine"] == "batched"
    ours = [r.plan for r in read_metrics(batched) if isinstance(r, IterationRecord)]
    theirs = [r.plan for r in read_metrics(replay) if isinstance(r, IterationRecord)]
    assert ours[:30] == theirs[:30]
    with pytest.raises(SystemExit):
        main(["report", str(run_dir), str(replay), "--out", str(tmp_path / "report")])
    text = (tmp_path / "report" / "report.md").read_text()
    assert "Replay against the real run" in text


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: tmp / "missing", "no run directory there"),
        (lambda tmp: _sim_dir(tmp), "needs a run of `mpls up`"),
    ],
)
def test_replay_of_something_that_is_not_a_real_run_is_one_line(tmp_path, capsys, make, message):
    with pytest.raises(SystemExit) as done:
        main(["sim", "--replay", str(make(tmp_path)), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert done.value.code == 2 and message in err and "\n" not in err


def _sim_dir(tmp: Path) -> Path:
    path = tmp / "sim-run"
    path.mkdir()
    write_manifest(path, "sim", RunConfig().model_dump(mode="json"))
    return path


def test_the_replay_plans_with_the_recorded_estimates_and_pays_the_recorded_latency():
    from mpls_celery.core.link_model import PRIOR_BPS
    from mpls_celery.sim.recorded_run import replay_network
    from mpls_celery.telemetry.trace import Iteration, Transfer

    trace = Trace(
        workers=2,
        duration=10.0,
        iterations=(Iteration(0, 10.0, 0.1, 1.0, 1.0, 1.0),),
        transfers=(
            Transfer(0, 1, 1.0, 0.3, 1_000.0),  # small: 0.3 s of round trips
            Transfer(0, 1, 2.0, 0.3, 1_000.0),
            Transfer(0, 1, 3.0, 0.3, 1_000.0),
            Transfer(0, 1, 4.0, 1.3, 1e6),  # 1 MB: 1 s of bytes + 0.3 s latency
            Transfer(0, 1, 6.0, 2.3, 1e6),
        ),
    )
    net = replay_network(trace, slot_seconds=5.0)
    # before its first measured transfer ended (5.3 s) the worker planned with the prior
    assert net.planning_speeds(0, [1], 5.0)[0] == PRIOR_BPS
    first, second = 1e6 / 1.3, 1e6 / 2.3  # what the runtime measured, latency included
    assert net.planning_speeds(0, [1], 6.0)[0] == pytest.approx(first)
    assert net.planning_speeds(0, [1], 9.0)[0] == pytest.approx(0.7 * first + 0.3 * second)
    # the transfer really takes latency + bytes / the link's rate without latency (slot 0: 1 s/MB)
    seconds = net.realized_pull_seconds(0, [1], np.array([5e5]), 1.0)
    assert seconds is not None and seconds[0] == pytest.approx(0.3 + 0.5)


def test_a_probed_run_is_replayed_with_its_probes_and_an_older_trace_still_reads():
    from mpls_celery.core.link_model import PRIOR_BPS
    from mpls_celery.sim.recorded_run import replay_network
    from mpls_celery.telemetry.trace import Iteration, Transfer

    trace = Trace(
        workers=2,
        duration=10.0,
        iterations=(Iteration(0, 6.0, 0.5, 1.0, 1.0, 0.0), Iteration(1, 4.0, 2.0, 0.5, 0.5, 0.0)),
        transfers=(Transfer(0, 1, 5.0, 1.0, 1e6),),
        probes=(Transfer(0, 1, 3.0, 0.25, 131_072.0),),
    )
    assert Trace.from_json(trace.to_json()) == trace
    net = replay_network(trace, link_speeds=LinkSpeeds.PROBED)
    assert net.planning_speeds(0, [1], 3.2)[0] == PRIOR_BPS  # the probe ends at 3.25 s
    probed = 131_072.0 / 0.25
    assert net.planning_speeds(0, [1], 9.0)[0] == pytest.approx(probed)  # pulls do not move it
    assert replay_network(trace).planning_speeds(0, [1], 9.0)[0] == pytest.approx(1e6)
    assert [net.start_seconds(w) for w in (0, 1)] == [5.0, 2.0]
    older = orjson.loads(trace.to_json())
    del older["probes"]
    assert Trace.from_json(orjson.dumps(older)).probes == ()


def test_fitting_a_run_whose_pulls_were_too_small_to_measure_is_one_line(tmp_path, capsys):
    run_dir = recorded_run(tmp_path)
    metrics = run_dir / METRICS
    small = metrics.read_text().replace(f"[{NBYTES}", "[1000.0")  # every transfer 1 kB
    metrics.write_text(small)
    with pytest.raises(SystemExit) as done:
        main(["profile", "fit", str(run_dir), "-o", str(tmp_path / "p.yaml")])
    err = capsys.readouterr().err.strip()
    assert done.value.code == 2 and "no transfer big enough" in err and "\n" not in err
    assert not (tmp_path / "p.yaml").exists()
