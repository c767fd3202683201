"""docker-compose.yml on one host: a run to its summary, `mpls report`, `mpls tui` drawn once, and
a run that survives a killed worker container and a restarted Redis container."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import orjson

from infra.containers.check.results import Results, expect, wait_until
from infra.containers.check.runs import (
    every_iteration_once,
    finished,
    host_run_dir,
    run_launcher,
    wait_for_iterations,
)
from infra.containers.project import ONE_HOST, REPO, Project, docker


def one_host_project(env: dict[str, str]) -> Project:
    return Project("mpls-check", [ONE_HOST], env, profiles=["tui"])


def one_host(project: Project, runs: Path, results: Results) -> None:
    with results.timed("one host: Redis and two worker containers up"):
        project.compose("up", "--detach", "--wait", "redis")
        project.compose("up", "--detach", "--no-deps", "--scale", "worker=2", "worker")
    with results.timed("one host: infra/run.yaml to its summary"):
        summary = run_launcher(project)
        finished(summary, 100)
        run_dir = host_run_dir(runs, summary)
        every_iteration_once(run_dir, 6, 100)
    with results.timed("one host: mpls report"):
        argv = ["run", "--rm", "--no-deps", "launcher", "mpls", "report", str(summary["run_dir"])]
        report = orjson.loads(project.compose(*argv, "--json").stdout)
        expect((run_dir / "report" / "report.md").exists(), "mpls report wrote no report.md")
    results.facts["one_host"] = {
        "run_id": summary["run_id"], "wall_seconds": summary["wall_seconds"],
        "final_mean_acc": round(summary["final_mean_acc"], 4),
        "report_iterations": report["algorithms"]["mpls"]["iterations"],
    }  # fmt: skip
    with results.timed("one host: mpls tui rendered"):
        results.facts["tui"] = render_tui(project, str(summary["run_id"]))


def render_tui(project: Project, run_id: str, seconds: float = 20) -> str:
    """`docker compose run tui` under a pseudo-terminal (`script`) until it has drawn its table."""
    name = f"mpls-check-tui-{secrets.token_hex(3)}"
    command = " ".join([*project.base(), "run", "--rm", "--no-deps", "--name", name, "tui",
                        "mpls", "tui", run_id])  # fmt: skip
    with tempfile.NamedTemporaryFile(suffix=".typescript") as screen:
        subprocess.run(["timeout", str(seconds), "script", "-qfec", command, screen.name],
                       env=project.environment(), cwd=REPO, capture_output=True)  # fmt: skip
        drawn = Path(screen.name).read_text(errors="replace")
    docker("rm", "--force", name, check=False)
    expect(
        "heartbeat" in drawn and "worker" in drawn,
        f"the TUI drew no worker table: {drawn[-500:]!r}",
    )
    return f"worker table drawn ({len(drawn)} bytes of terminal output)"


def faults(project: Project, runs: Path, results: Results, iterations: int = 600) -> None:
    run_id = f"faults-{secrets.token_hex(3)}"
    total = 6 * iterations
    proc = project.popen("run", "--rm", "--no-deps", "launcher", "mpls", "up", "--no-local-workers",
                         "--config", "/config/run.yaml", "--iterations", str(iterations),
                         "--run-id", run_id, "--json")  # fmt: skip
    run_dir = runs / f"run-{run_id}"
    started = time.monotonic()
    events: dict[str, float] = {}

    def seen(event: str) -> None:
        events[event] = round(time.monotonic() - started, 1)
        print(f"   {events[event]:6.1f} s  {event}", flush=True)

    try:
        with results.timed("faults: a worker container's process killed, restarted by its policy"):
            wait_for_iterations(run_dir, total // 4, proc)
            worker = project.container("worker", 1)
            os.kill(project.state(worker).pid, signal.SIGKILL)  # as the OOM killer would
            seen(f"{total // 4} iterations recorded: worker-1's Celery process killed")
            wait_until(lambda: project.state(worker).restarts == 1
                       and project.state(worker).running, 60, "worker container restart")  # fmt: skip
            seen("worker-1 running again (restart policy)")
        with results.timed("faults: `docker kill` of a worker container, brought back by compose"):
            wait_for_iterations(run_dir, 3 * total // 8, proc)
            other = project.container("worker", 2)
            docker("kill", other)
            seen(f"{3 * total // 8} iterations recorded: docker kill worker-2")
            time.sleep(3)  # Docker counts `docker kill` as a manual stop: no policy restarts it
            expect(
                not project.state(other).running, "worker-2 came back by itself after docker kill"
            )
            project.compose("up", "--detach", "--no-deps", "--scale", "worker=2", "worker")
            expect(project.state(other).running, "docker compose up did not start worker-2 again")
            seen("worker-2 running again (docker compose up)")
        with results.timed("faults: the Redis container restarted (AOF)"):
            wait_for_iterations(run_dir, total // 2, proc)
            seen(f"{total // 2} iterations recorded: docker restart redis")
            docker("restart", project.container("redis"))
            seen("redis running again")
        with results.timed("faults: the run to its end"):
            out, err = proc.communicate(timeout=900)
            seen("mpls up exited")
            expect(proc.returncode == 0, f"mpls up exited {proc.returncode}: {err[-2000:]}")
    finally:
        if proc.poll() is None:
            proc.kill()
    summary = orjson.loads(out)
    finished(summary, iterations)
    every_iteration_once(run_dir, 6, iterations)
    results.facts["faults"] = {
        "run_id": run_id, "wall_seconds": summary["wall_seconds"], "iterations": total,
        "events": events, "celery_restarts": summary["celery_restarts"], "pauses": summary["pauses"],
    }  # fmt: skip
