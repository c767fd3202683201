"""Every row of the bad-input table in docs/failure-modes.md: one line on stderr naming the
problem, exit code 2 (usage/config) or 1 (runtime), and nothing already stored is touched."""

import os
import re
from pathlib import Path

import orjson
import pytest

from mpls_celery.cli.app import main
from mpls_celery.cli.runs_cmd import NOWHERE
from mpls_celery.config.run_config import RunConfig
from mpls_celery.config.seed_dirs import write_seed_dir
from mpls_celery.config.topology_files import build_topology
from mpls_celery.errors import RedisUnavailable
from mpls_celery.runtime.backend.connection import check_reachable
from mpls_celery.runtime.backend.embedded_redis import EmbeddedRedis
from mpls_celery.runtime.backend.redis_url import DEFAULT_URL
from mpls_celery.runtime.launch.local_runs import LocalRun, local_runs, register
from mpls_celery.settings import Settings


def run(argv, capsys):  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as done:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, f"not one line: {err!r}"
    return done.value.code, err


SIM = [
    "sim",
    "--workers",
    "3",
    "--model",
    "mlp",
    "--dataset",
    "digits",
    "--until",
    "1s",
    "--jobs",
    "1",
]


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["sim", "--algo", "mpls,lenet"], "unknown algorithm 'lenet'; choose from: mpls"),
        (
            [*SIM, "--model", "lenet"],
            "unknown model 'lenet'; choose one of: lenet5, nin, resnet18, mlp",
        ),
        ([*SIM, "--dataset", "imagenet"], "unknown dataset 'imagenet'; choose one of: digits"),
        ([*SIM, "--topology", "star"], "star"),
        (
            [*SIM, "--profile", "wifi6"],
            "unknown network profile 'wifi6'; choose one of: none, uniform",
        ),
        ([*SIM, "--tau1", "0.7", "--tau2", "0.7"], "tau1 + tau2 must equal 1"),
        (["sim", "--workers", "-3"], "workers"),
        ([*SIM, "--until", "soon"], "invalid duration 'soon'"),
        (["topology", "show", "--kind", "random", "--p", "1.5"], "p"),
        (["up", "--workers", "0"], "workers"),
        (["profile", "show", "paper30", "--workers", "0"], "--workers"),
        (["up", "--redis", "notaurl"], "'notaurl' is not a Redis URL: use redis://, rediss://"),
        (["up", "--redis", "http://127.0.0.1:6379"], "is not a Redis URL: use redis://"),
        (["runs", "--redis", "http://127.0.0.1:6379"], "is not a Redis URL"),
        (["worker", "--redis", "notaurl"], "'notaurl' is not a Redis URL"),  # Celery: a module
        (["worker", "--device", "gpu"], "unknown device 'gpu'; choose one of: auto, cpu, cuda"),
        (["worker", "--device", "cuda:99"], "device 'cuda:99': "),  # none here, or too few GPUs
        (["worker", "--loglevel", "LOUD"], "unknown log level 'LOUD'; choose one of: DEBUG"),
        ([*SIM, "--import", "/nonexistent"], "import folder '/nonexistent': no such folder"),
        ([*SIM, "--step-seconds", "0"], "options: step_seconds: Input should be greater than 0"),
        (["tui", "./runs/no-such-dir"], "no run directory or run id named './runs/no-such-dir'"),
        (["repro", "lenet"], "unknown preset 'lenet'; choose one of: lenet-full"),
        ([*SIM, "--mixing", "average"], "mixing: Input should be 'average-then-step'"),
        (["up", "--link-speeds", "fast"], "link_speeds: Input should be 'probed' or 'achieved'"),
        (["up", "--lr", "inf"], "training.lr: Input should be a finite number"),
        ([*SIM, "--lr", "nan"], "training.lr: Input should be a finite number"),
        (["up", "--tau1", "inf"], "tau1: Input should be a finite number"),
        (["up", "--config", "/bin/ls"], "/bin/ls: not a text file (a run config is UTF-8 YAML)"),
        (["up", "--config", "x" * 10_000], "… (10000 characters): File name too long"),
        (["tui", "x" * 10_000], "no run directory or run id named 'xxxx"),
        (["report", "x" * 10_000], "… (10000 characters): no run directory there"),
        (["status", "x" * 10_000], "is not a run id"),
        (["down", "bad/id"], "'bad/id' is not a run id"),
        (["up", "--resume", "x" * 200], "is not a run id"),
        (["up", "--resume", "r1", "--workers", "3"], "--resume takes run r1's own config"),
        (["credentials", "../x", "--nodes", "0"], "is not a run id"),
    ],
)
def test_bad_flags_get_one_line_and_exit_2(argv, needle, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("MPLS_RUNS_DIR", str(tmp_path))
    code, err = run(argv, capsys)
    assert code == 2
    assert needle in err


def test_an_algorithm_whose_training_diverges_stops_and_its_records_are_kept(
    capsys, tmp_path, monkeypatch
):
    """Beside the others, a divergence is a result: the summary and metrics are written, the
    algorithm marked, then one line and exit 1."""
    monkeypatch.setenv("MPLS_RUNS_DIR", str(tmp_path))
    argv = ["sim", "--workers", "2", "--model", "lenet5", "--dataset", "digits",
            "--algo", "mpls,netmax", "--profile", "uniform", "--until", "30s", "--jobs", "1",
            "--lr", "1000", "--json"]  # fmt: skip
    with pytest.raises(SystemExit) as done:
        main(argv)
    out, err = capsys.readouterr()
    assert done.value.code == 1
    one = (r"(mpls|netmax): worker \d diverged at iteration \d+: its training loss is (nan|inf) "
           r"\(learning rate 1000; a smaller --lr, or features on a smaller scale, usually helps\)")  # fmt: skip
    assert re.fullmatch(f"error: {one}; {one}\n", err), err
    summary = orjson.loads(out)
    assert summary["failed"] and set(summary["diverged"]) == {"mpls", "netmax"}
    run_dir = Path(summary["run_dir"])
    assert (run_dir / "summary.json").exists()
    records = [orjson.loads(line) for line in (run_dir / "metrics.jsonl").read_bytes().splitlines()]
    assert {r["algo"] for r in records} == {"mpls", "netmax"}  # what each did before it diverged
    with pytest.raises(SystemExit) as done:
        main(["report", str(run_dir), "--json"])
    assert done.value.code == 0
    report = orjson.loads(capsys.readouterr().out)
    assert set(report["ended_early"]) == {"mpls", "netmax"}  # the report says so beside its rows
    lines = (run_dir / "report" / "report.md").read_text().splitlines()
    listed = lines[lines.index("## Did not end as asked") + 2 :][:2]
    assert all(re.fullmatch(f"- {one}", line) for line in listed), listed


def test_malformed_and_unreadable_files(capsys, tmp_path):
    bad = tmp_path / "run.yaml"
    bad.write_text("workers: [3\n")
    code, err = run(["config", "show", str(bad)], capsys)
    assert code == 2 and err.startswith(f"error: {bad}: malformed YAML at line")
    code, err = run(["config", "show", str(tmp_path / "missing.yaml")], capsys)
    assert code == 2 and "missing.yaml" in err


def test_more_workers_than_the_topology_file_names(capsys, tmp_path):
    topo = tmp_path / "edges.yaml"
    topo.write_text("edges: [[0, 1], [1, 2]]\nworkers: 3\n")
    code, err = run(["topology", "show", "--file", str(topo), "--workers", "5"], capsys)
    assert code == 2 and "topology has 3 workers, the run has 5" in err


def test_seed_style_directory_with_a_missing_worker(capsys, tmp_path):
    cfg = RunConfig().with_overrides(workers=4, **{"topology.kind": "ring"})
    write_seed_dir(cfg, build_topology(cfg.topology, 4, 1), tmp_path)
    (tmp_path / "worker_1.yaml").unlink()
    code, err = run(["config", "show", str(tmp_path)], capsys)
    assert code == 2 and "missing [1]" in err


def test_missing_dataset_files(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("MPLS_DATA_DIR", str(tmp_path))
    code, err = run([*SIM, "--dataset", "cifar10"], capsys)
    assert code == 2 and str(tmp_path / "cifar-10-batches-py") in err


def test_unreachable_redis_and_wrong_password(capsys):
    code, err = run(["status", "--redis", "redis://127.0.0.1:1/0"], capsys)
    assert code == 1 and err.startswith("error: cannot reach Redis at redis://127.0.0.1:1/0")
    with EmbeddedRedis(password="right") as server:
        wrong = server.url.replace(":right@", ":wrong@")
        code, err = run(["runs", "--redis", wrong], capsys)
    assert code == 1 and "Redis at redis://***@" in err and "wrong" not in err


def test_an_unknown_run_is_named(capsys, redis_url):
    code, err = run(["status", "no-such-run", "--redis", redis_url], capsys)
    assert code == 2 and "run 'no-such-run' not found" in err


def test_report_on_a_folder_that_is_no_run(capsys, tmp_path: Path):
    code, err = run(["report", str(tmp_path)], capsys)
    assert code == 2 and "no run directory there" in err


def test_tui_on_a_name_that_is_neither_a_run_dir_nor_a_run(capsys, redis_url):
    code, err = run(["tui", "no-such-run", "--redis", redis_url], capsys)
    assert code == 2 and "no run directory or run id named 'no-such-run'" in err
    code, err = run(["tui", "no-such-run", "--redis", "redis://127.0.0.1:1/0"], capsys)
    assert code == 2 and "no run directory named 'no-such-run', and cannot reach Redis" in err


def test_a_preset_whose_dataset_is_missing_says_so(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("MPLS_DATA_DIR", str(tmp_path))
    code, err = run(["repro", "nin-cifar10"], capsys)
    assert code == 2 and err.startswith("error: repro nin-cifar10: cifar10: dataset files")


@pytest.fixture
def nothing_running(isolated_env: Path) -> Path:
    """No local run, no Redis named, and none at the default address."""
    try:
        check_reachable(DEFAULT_URL, Settings())
    except RedisUnavailable:
        return isolated_env
    pytest.skip(f"a Redis answers at {DEFAULT_URL} on this machine")


def test_down_of_a_run_nobody_knows_says_so(capsys, nothing_running):
    """Not 'cannot reach Redis': no such run here, and where it looked."""
    with EmbeddedRedis() as server:
        code, err = run(["down", "no-such-run", "--redis", server.url], capsys)
    assert code == 2
    assert (
        err
        == "error: no run 'no-such-run': none on this machine nor in Redis (`mpls runs` lists them)"
    )
    code, err = run(["down", "no-such-run"], capsys)
    assert code == 2 and err.startswith(f"error: no run 'no-such-run': {NOWHERE}")


@pytest.mark.parametrize(
    ("argv", "first_words"),
    [
        (["status"], "no runs: "),
        (["status", "no-such-run"], "no run 'no-such-run': "),
        (["down"], "no runs: "),
        (["tui"], "no runs to watch: "),
    ],
)
def test_with_nothing_running_a_command_says_where_it_looked(
    capsys, nothing_running, argv, first_words
):
    """After a local run has ended its embedded Redis is gone too: not 'cannot reach Redis at
    …:6379', which nobody configured, but that nothing is running and where results are."""
    code, err = run(argv, capsys)
    assert (code, err) == (2, f"error: {first_words}{NOWHERE}")


def test_runs_with_nothing_running_lists_none(capsys, nothing_running):
    with pytest.raises(SystemExit) as done:
        main(["runs", "--json"])
    assert done.value.code == 0 and orjson.loads(capsys.readouterr().out) == []
    with pytest.raises(SystemExit) as done:
        main(["runs"])
    out = capsys.readouterr().out
    assert done.value.code == 0 and "no runs: no `mpls up` is live here" in out


def test_a_partial_last_line_in_metrics_is_skipped_with_a_warning(capsys, tmp_path, caplog):
    """What a crash mid-append leaves: the report reads the rest and says which line it left."""
    code, _ = run([*SIM, "--out", str(tmp_path), "--json"], capsys)
    assert code == 0
    run_dir = next(tmp_path.glob("sim-*"))
    metrics = run_dir / "metrics.jsonl"
    lines = metrics.read_bytes().splitlines(keepends=True)
    metrics.write_bytes(b"".join(lines) + lines[-1][:17])  # a record cut short, no newline
    with caplog.at_level("WARNING"):
        code, _ = run(["report", str(run_dir), "--json"], capsys)
    assert code == 0
    assert f"{metrics}:{len(lines) + 1}: skipping a partial last line" in caplog.text
    metrics.write_bytes(lines[0][:17] + b"\n" + b"".join(lines[1:]))  # not the last: an error
    code, err = run(["report", str(run_dir)], capsys)
    assert code == 1 and f"{metrics}:1:" in err


def test_min_workers_above_the_workers_is_refused_before_anything_starts(capsys, isolated_env):
    """It used to start the run, which then ended at once: 'only 3 workers alive'."""
    code, err = run(["up", "--workers", "3", "--model", "mlp", "--min-workers", "10"], capsys)
    assert (code, err) == (2, "error: options: min_workers 10 is more than the run's 3 workers")
    assert not (isolated_env / "runs").exists() and not (isolated_env / "state").exists()


def test_status_while_a_live_local_runs_redis_is_down_says_so(capsys, nothing_running):
    """A launcher waiting out its Redis's outage: not 'no `mpls up` is live here'."""
    settings = Settings(state_dir=nothing_running / "state")
    dead_redis = "redis://127.0.0.1:1/0"
    register(settings, LocalRun("r1", dead_redis, os.getpid(), "runs/run-r1", embedded=False))
    code, err = run(["status"], capsys)
    assert (code, err) == (
        2,
        f"error: no runs: no Redis answers (tried {dead_redis}, {DEFAULT_URL}); a live local "
        "run's Redis is down",
    )


def test_a_folder_that_cannot_be_written_is_one_line(capsys, isolated_env, monkeypatch):
    """--out or MPLS_RUNS_DIR under a file: the path and the reason, not an OSError traceback;
    `mpls up` leaves no run registered."""
    blocker = isolated_env / "a-file"
    blocker.write_text("x")
    code, err = run([*SIM, "--out", str(blocker)], capsys)
    assert code == 2 and re.fullmatch(rf"error: {blocker}/sim-[\d-]+: Not a directory", err), err
    monkeypatch.setenv("MPLS_RUNS_DIR", str(blocker / "runs"))
    code, err = run(["up", "--workers", "2", "--model", "mlp", "--iterations", "2"], capsys)
    assert code == 2
    assert re.fullmatch(rf"error: {blocker}/runs/run-[\w-]+: Not a directory", err), err
    assert local_runs(Settings(state_dir=isolated_env / "state")) == []
