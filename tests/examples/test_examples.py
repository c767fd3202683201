"""The examples are tests: each is copied out of the checkout as a user would use it, its data
made, and run the way its README line says — `mpls sim` and `mpls up` from its own folder (its
model.py / data.py are imported from there), short."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from mpls_celery.telemetry.records import IterationRecord
from mpls_celery.telemetry.rundir import read_metrics
from scripts.examples_report import prepared
from tests.conftest import REPO

EXAMPLES = REPO / "examples"
NAMES = ["digits_imagefolder", "tabular_npz", "transformer_sequences", "own_algorithm"]


def mpls(folder: Path, *args: str, timeout: float = 300) -> dict:  # type: ignore[type-arg]
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "MPLS_REDIS_URL")}
    env.update(MPLS_STATE_DIR=str(folder / "state"), MPLS_RUNS_DIR=str(folder / "runs"))
    done = subprocess.run(
        [sys.executable, "-m", "mpls_celery", *args, "--json"],
        cwd=folder, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(orjson.loads(done.stdout))


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_example_runs_in_the_simulator(name, tmp_path):
    folder = prepared(name, tmp_path)
    summary = mpls(folder, "sim", "--config", "run.yaml", "--algo", "mpls,netmax",
                   "--profile", "paper30", "--until", "1s", "--jobs", "1")  # fmt: skip
    for algo in ("mpls", "netmax"):
        assert summary["algorithms"][algo]["iterations"] > 0
        assert summary["algorithms"][algo]["final_mean_acc"] is not None


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_example_runs_for_real(name, tmp_path):
    folder = prepared(name, tmp_path)
    summary = mpls(folder, "up", "--config", "run.yaml", "--workers", "3", "--iterations", "4")
    assert summary["reason"] == "every worker finished"
    assert [w["iteration"] for w in summary["workers"]] == [4, 4, 4]
    manifest = orjson.loads((Path(summary["run_dir"]) / "manifest.json").read_bytes())
    own = manifest["config"]["model" if name != "own_algorithm" else "algorithm"]
    assert own.startswith(("model:", "greedy:")) and manifest["model_hash"]


@pytest.mark.slow
def test_an_algorithm_of_your_own_runs_beside_mpls(tmp_path):
    """examples/own_algorithm's FastestPeer: every layer from one peer each iteration."""
    folder = prepared("own_algorithm", tmp_path)
    summary = mpls(folder, "sim", "--config", "run.yaml", "--algo", "greedy:FastestPeer,mpls",
                   "--profile", "paper30", "--until", "1s", "--jobs", "1")  # fmt: skip
    assert set(summary["algorithms"]) == {"greedy:FastestPeer", "mpls"}
    records = read_metrics(Path(summary["run_dir"]))
    plans = [r.plan for r in records if isinstance(r, IterationRecord) and r.algo != "mpls"]
    assert plans and all(len(p) <= 1 for p in plans)
    assert any(layers == [0, 1, 2, 3, 4] for p in plans for layers in p.values())
