import gzip
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import orjson
import pytest

from mpls_celery.cli.app import main
from mpls_celery.config.run_config import RunConfig
from mpls_celery.core.strategies import STRATEGY_NAMES
from mpls_celery.sim.engine import SimOptions
from mpls_celery.sim.runner import SimRequest, run_simulation
from mpls_celery.telemetry.records import EvalRecord, IterationRecord
from mpls_celery.telemetry.rundir import METRICS, SUMMARY, read_json, read_metrics
from tests.golden import GoldenMismatch, assert_same_records, perturbed

SMALL = RunConfig().with_overrides(
    workers=5,
    model="mlp",
    dataset="digits",
    **{"topology.kind": "full", "network.profile": "paper30", "training.lr": 0.05},
)
DATA = Path(__file__).parent / "data"
OPTIONS = SimOptions("mpls", until=4.0, eval_every=1.0, eval_samples=60, step_seconds=0.02)


def simulate(tmp_path: Path, cfg: RunConfig = SMALL, algorithms=("mpls", "appg"), **opts) -> Path:
    request = SimRequest(
        cfg, algorithms, replace(OPTIONS, **opts), Path("."), tmp_path, jobs=1, threads=1
    )
    return run_simulation(request)


def test_same_seed_gives_byte_identical_metrics_and_another_seed_differs(tmp_path):
    first = simulate(tmp_path / "a")
    second = simulate(tmp_path / "b")
    other = simulate(tmp_path / "c", cfg=SMALL.with_overrides(seed=2))
    assert (first / METRICS).read_bytes() == (second / METRICS).read_bytes()
    assert (first / METRICS).read_bytes() != (other / METRICS).read_bytes()


def test_records_follow_the_virtual_clock_and_the_plan(tmp_path):
    run = simulate(tmp_path, algorithms=("mpls",))
    records = list(read_metrics(run))
    iterations = [r for r in records if isinstance(r, IterationRecord)]
    evals = [r for r in records if isinstance(r, EvalRecord)]
    assert [e.t for e in evals] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert [r.epoch for r in iterations] == list(range(1, len(iterations) + 1))
    assert all(r.t <= 4.0 for r in iterations)
    for r in iterations:
        # iteration time = max(compute, λ): the event clock advances by exactly that
        assert r.pull_seconds >= 0 and r.compute_seconds > 0
        assert all(0 <= layer < 2 for layers in r.plan.values() for layer in layers)
        assert r.worker not in r.plan
    per_worker = {w: [r for r in iterations if r.worker == w] for w in range(5)}
    for runs in per_worker.values():
        starts = [0.0] + [r.t for r in runs[:-1]]
        for start, r in zip(starts, runs, strict=True):
            assert r.t == pytest.approx(start + max(r.compute_seconds, r.pull_seconds))
    assert evals[-1].mean_acc > evals[0].mean_acc  # real SGD: it learns


def test_summary_reports_time_to_target_and_speedups(tmp_path):
    run = simulate(tmp_path, target_acc=0.5)
    summary = read_json(run / SUMMARY)
    assert set(summary["algorithms"]) == {"mpls", "appg"}
    mpls = summary["algorithms"]["mpls"]
    assert mpls["iterations"] > 0 and mpls["bytes_pulled"] > 0
    if mpls["time_to_target"] and summary["algorithms"]["appg"]["time_to_target"]:
        ratio = summary["algorithms"]["appg"]["time_to_target"] / mpls["time_to_target"]
        assert summary["speedup"]["mpls"]["appg"] == pytest.approx(ratio, rel=1e-3)


def test_cli_sim_json_and_report_pngs(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    argv = [
        "sim", "--algo", "mpls,rand-mpls", "--workers", "4", "--model", "mlp", "--dataset",
        "digits", "--profile", "uniform", "--until", "2s", "--eval-every", "1", "--jobs", "1",
        "--target-acc", "0.3", "--out", str(tmp_path), "--json",
    ]  # fmt: skip
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 0
    summary = orjson.loads(capsys.readouterr().out)
    assert set(summary["algorithms"]) == {"mpls", "rand-mpls"}
    run_dir = Path(summary["run_dir"])
    manifest = read_json(run_dir / "manifest.json")
    assert manifest["config"]["workers"] == 4 and "torch" in manifest["versions"]
    with pytest.raises(SystemExit) as done:
        main(["report", str(run_dir), "--worker", "1"])
    assert done.value.code == 0
    made = {p.name for p in (run_dir / "report").iterdir()}
    assert {"accuracy_vs_time.png", "accuracy_vs_epochs.png", "bytes_per_worker.png"} <= made
    assert "heatmap_mpls_worker1.png" in made and "report.md" in made


def test_outage_removes_a_peer_from_the_view(tmp_path):
    from mpls_celery.core.network_profile import Outage
    from mpls_celery.experiment import build_experiment
    from mpls_celery.sim.engine import Simulation

    exp = build_experiment(SMALL, Path("."))
    assert exp.profile is not None
    cut = replace(exp.profile, outages=tuple(Outage(0, j, 0.0, 100.0) for j in range(1, 5)))
    sim = Simulation(exp, replace(OPTIONS, until=1.0), cut)
    records = sim.run()
    isolated = [r for r in records if isinstance(r, IterationRecord) and r.worker == 0]
    assert isolated and all(r.plan == {} and r.peers_reachable == 0 for r in isolated)
    others = [r for r in records if isinstance(r, IterationRecord) and r.worker != 0]
    assert all(0 not in r.plan for r in others)
    assert np.all([r.peers_reachable == 3 for r in others])


LITERAL_CFG = RunConfig().with_overrides(
    workers=5,
    model="mlp",
    dataset="digits",
    mixing="train-then-average",
    pull_sees="published",
    progress_window="version",
    links="independent",
    **{
        "topology.kind": "random",
        "topology.p": 0.7,
        "network.profile": "paper30",
        "training.lr": 0.05,
        "partition.kind": "noniid",
    },
)


LITERAL_ARGV = [
    "--workers", "5", "--model", "mlp", "--dataset", "digits", "--mixing", "train-then-average",
    "--pull-sees", "published", "--progress-window", "version", "--links", "independent",
    "--topology", "random", "--p", "0.7", "--profile", "paper30", "--lr", "0.05",
    "--partition", "noniid", "--until", "2s", "--eval-every", "1", "--eval-samples", "60",
    "--step-seconds", "0.02", "--target-acc", "0.3", "--jobs", "1",
]  # fmt: skip


def literal_metrics(
    tmp_path: Path, cfg: RunConfig = LITERAL_CFG, engine: str = "auto"
) -> list[bytes]:
    request = SimRequest(
        cfg,
        STRATEGY_NAMES,
        SimOptions("mpls", until=2.0, eval_every=1.0, eval_samples=60, step_seconds=0.02,
                   target_acc=0.3, engine=engine),
        Path("."), tmp_path, jobs=1, threads=1,
    )  # fmt: skip
    return (run_simulation(request) / METRICS).read_bytes().splitlines()


def recorded_literal() -> list[bytes]:
    """Step 9 as first resolved, recorded (on another CPU) before the shared worker step existed:
    all seven algorithms, 574 records."""
    return gzip.decompress((DATA / "literal_step9_metrics.jsonl.gz").read_bytes()).splitlines()


def test_train_then_average_reproduces_the_recording(tmp_path):
    assert_same_records(literal_metrics(tmp_path), recorded_literal())


@pytest.mark.slow
def test_the_recording_holds_under_other_cpu_kernels(tmp_path):
    """Another CPU, on this one: ATen's portable kernels and oneDNN capped at SSE4.1 round
    differently from this machine's AVX code, as a different machine's would."""
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41"}
    env.pop("MPLS_RUNS_DIR", None)
    done = subprocess.run(
        [sys.executable, "-m", "mpls_celery", "sim", "--algo", ",".join(STRATEGY_NAMES),
         *LITERAL_ARGV, "--out", str(tmp_path), "--json"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    run_dir = Path(orjson.loads(done.stdout)["run_dir"])
    produced = (run_dir / METRICS).read_bytes().splitlines()
    assert produced != recorded_literal()  # the kernels really did round differently
    assert_same_records(produced, recorded_literal())


def test_the_golden_comparison_forgives_last_bits_and_nothing_else():
    recorded = recorded_literal()
    assert_same_records(perturbed(recorded), recorded)
    first, second = [i for i, line in enumerate(recorded) if b'"iteration"' in line][:2]
    swapped = list(recorded)
    swapped[first], swapped[second] = swapped[second], swapped[first]
    with pytest.raises(GoldenMismatch, match="line 2"):
        assert_same_records(swapped, recorded)
    fewer_bytes = [recorded[0], recorded[1].replace(b'"bytes_pulled":203560.0', b'"bytes_pulled":203559.0'), *recorded[2:]]  # fmt: skip
    with pytest.raises(GoldenMismatch, match="bytes_pulled"):
        assert_same_records(fewer_bytes, recorded)
    other_plan = [recorded[0], recorded[1].replace(b'"plan":{"4":[0,1]}', b'"plan":{"4":[0]}'), *recorded[2:]]  # fmt: skip
    with pytest.raises(GoldenMismatch, match="plan"):
        assert_same_records(other_plan, recorded)
    with pytest.raises(GoldenMismatch, match="records produced"):
        assert_same_records(recorded[:-1], recorded)


def test_the_other_mixing_order_breaks_the_recording(tmp_path):
    """The tolerance is no blindfold: averaging before the local step (the other order) fails."""
    produced = literal_metrics(tmp_path, LITERAL_CFG.with_overrides(mixing="average-then-step"))
    with pytest.raises(GoldenMismatch):
        assert_same_records(produced, recorded_literal())


@pytest.mark.parametrize(
    "option, value",
    [
        ("mixing", "train-then-average"),
        ("pull_sees", "published"),
        ("progress_window", "version"),
        ("links", "shared"),
    ],
)
def test_every_iteration_semantics_option_changes_what_happens(tmp_path, option, value):
    base = SMALL.with_overrides(**{"topology.kind": "random", "topology.p": 0.7})
    default = simulate(tmp_path / "default", cfg=base, algorithms=("mpls",))
    changed = simulate(tmp_path / "changed", cfg=base.with_overrides(**{option: value}),
                       algorithms=("mpls",))  # fmt: skip
    assert (default / METRICS).read_bytes() != (changed / METRICS).read_bytes()


def test_epoch_evaluations_land_on_multiples_of_the_interval(tmp_path):
    run = simulate(tmp_path, algorithms=("netmax",), until=None, epochs=60, eval_every_epochs=20)
    evals = [r for r in read_metrics(run) if isinstance(r, EvalRecord)]
    assert [e.epoch for e in evals] == [0, 20, 40, 60]


def test_the_allocator_gets_its_free_memory_back_every_so_many_publishes(monkeypatch):
    from mpls_celery.experiment import build_experiment
    from mpls_celery.sim import engine, heap

    calls: list[int] = []
    monkeypatch.setattr(engine, "RELEASE_EVERY", 10)
    monkeypatch.setattr(engine, "release_free_memory", lambda: calls.append(1))
    exp = build_experiment(SMALL, Path("."))
    assert exp.profile is not None
    sim = engine.Simulation(exp, replace(OPTIONS, until=1.0), exp.profile)
    sim.run()
    assert sim.epoch >= 20 and len(calls) == sim.epoch // 10
    heap.release_free_memory()  # the real one: found on glibc, a no-op elsewhere, never an error
