"""A run in the launcher container and what its run directory must show."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import orjson

from infra.containers.check.results import CheckFailed, expect
from infra.containers.project import Project
from mpls_celery.telemetry.completeness import account_iterations
from mpls_celery.telemetry.rundir import read_metrics


def run_launcher(project: Project, *argv: str, timeout: float = 900) -> dict[str, Any]:
    """`mpls up` in a launcher container (the service's own command when argv is empty)."""
    done = project.compose("run", "--rm", "--no-deps", "launcher", *argv, timeout=timeout)
    summary: dict[str, Any] = orjson.loads(done.stdout)
    return summary


def host_run_dir(runs: Path, summary: dict[str, Any]) -> Path:
    return runs / Path(str(summary["run_dir"])).name


def every_iteration_once(run_dir: Path, workers: int, iterations: int) -> None:
    account = account_iterations(read_metrics(run_dir), workers, iterations)
    expect(
        account.exactly_once,
        f"{run_dir.name}: twice {account.repeated[:5]}, missing {account.missing[:5]}",
    )


def finished(summary: dict[str, Any], iterations: int) -> None:
    expect(not summary["failed"], f"run failed: {summary['reason']}")
    short = [w for w in summary["workers"] if w["iteration"] != iterations]
    expect(not short, f"workers short of {iterations} iterations: {short}")


def wait_for_iterations(
    run_dir: Path, count: int, proc: subprocess.Popen[str], timeout: float = 300
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _, err = proc.communicate()
            raise CheckFailed(
                f"the run ended (exit {proc.returncode}) before {count} iterations: {err[-2000:]}"
            )
        metrics = run_dir / "metrics.jsonl"
        if metrics.exists() and metrics.read_bytes().count(b'"kind":"iteration"') >= count:
            return
        time.sleep(0.5)
    raise CheckFailed(f"{run_dir.name}: fewer than {count} iterations after {timeout:.0f} s")
