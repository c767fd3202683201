"""`mpls up --json` as a user runs it (a subprocess), then `mpls runs/status/down` on its Redis."""

import orjson
import pytest

from tests.conftest import run_mpls as mpls
from tests.conftest import worker_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_up_json_then_runs_status_down(redis_url, tmp_path):
    env = worker_env(redis_url, MPLS_RUNS_DIR=str(tmp_path / "runs"), MPLS_STATE_DIR=str(tmp_path))
    done = mpls(
        "up",
        "--workers",
        "3",
        "--model",
        "mlp",
        "--iterations",
        "8",
        "--topology",
        "full",
        "--json",
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = orjson.loads(done.stdout)
    assert [w["iteration"] for w in summary["workers"]] == [8, 8, 8]
    assert all(0.0 <= w["accuracy"] <= 1.0 for w in summary["workers"])
    run_id = summary["run_id"]
    assert (tmp_path / "runs" / f"run-{run_id}" / "summary.json").is_file()

    listed = orjson.loads(mpls("runs", "--json", env=env).stdout)
    assert listed[0]["run"] == run_id and listed[0]["status"] == "finished"
    table = mpls("runs", env={**env, "COLUMNS": "60"}).stdout  # narrow: the id is still whole
    assert f"│ {run_id} │" in table
    status = orjson.loads(mpls("status", run_id, "--json", env=env).stdout)
    assert [w["k"] for w in status["workers"]] == [8, 8, 8]
    purged = mpls("down", run_id, "--purge", env=env)
    assert purged.returncode == 0 and "deleted" in purged.stdout
    missing = mpls("status", run_id, env=env)
    assert missing.returncode == 2 and missing.stderr.strip().startswith("error: run")


def test_up_with_an_unreachable_named_redis_fails_cleanly(tmp_path):
    env = worker_env("redis://127.0.0.1:1/0", MPLS_STATE_DIR=str(tmp_path))
    done = mpls(
        "up", "--workers", "2", "--model", "mlp", "--redis", "redis://127.0.0.1:1/0", env=env
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: cannot reach Redis at redis://127.0.0.1:1/0: Error 111 connecting to 127.0.0.1:1. Connection refused."
    ]
