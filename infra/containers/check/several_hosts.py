"""Several hosts in containers: a control host (central Redis, launcher) and three worker hosts as
separate compose projects on their own networks, joined through the Docker host's published ports,
each host's link shaped to the `rooms` rates; MPLS and NetMax to a target on them."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

import yaml

from infra.containers.check.results import Results, expect
from infra.containers.check.runs import host_run_dir, run_launcher
from infra.containers.project import ONE_HOST, REPO, WORKER_HOST, Project
from infra.containers.shaping import shape_container
from infra.netns.hosts import ROOMS_HOSTS
from infra.netns.testbed import Testbed, cross_host_topology
from mpls_celery.report.build import build_report
from mpls_celery.telemetry.rundir import read_metrics
from mpls_celery.telemetry.summary import summarise
from scripts.netns_compare import analyse

CENTRAL_PORT = 16379
SNAPSHOT_PORTS = {"a": 16381, "b": 16382, "c": 16383}
PLACEMENT = {"a": [0, 1], "b": [2, 3], "c": [4, 5]}
TARGET_ACC = 0.9
CONTAINERS = REPO / "infra" / "containers"


def worker_host(name: str, env: dict[str, str], password: str) -> Project:
    port = SNAPSHOT_PORTS[name]
    host_env = {
        **env,
        "REDIS_URL": f"redis://:{password}@central:{CENTRAL_PORT}/0",
        "MPLS_NODES": ",".join(map(str, PLACEMENT[name])),
        "SNAPSHOT_PASSWORD": password,
        "SNAPSHOT_PORT": str(port),
        "SNAPSHOT_REDIS_URL": f"redis://:{password}@snapshots-{name}:{port}/0",
        f"SNAPSHOTS_{name.upper()}_ADDR": "127.0.0.1",
    }
    return Project(f"mpls-host-{name}", [WORKER_HOST, CONTAINERS / "emulated-host.yml"], host_env,
                   profiles=["snapshots"])  # fmt: skip


def rooms_run_file(folder: Path) -> Path:
    path = folder / "rooms.yaml"
    config = {
        "workers": 6, "model": "lenet5", "dataset": "digits", "partition": {"kind": "iid"},
        "topology": {"kind": "edges", "edges": cross_host_topology(PLACEMENT)["edges"]},
        "training": {"batch_size": 64, "lr": 0.1, "local_steps": 1},
        "network": {"profile": "none"},
    }  # fmt: skip
    path.write_text(yaml.safe_dump(config))
    return path


def several_hosts(
    env: dict[str, str], runs: Path, tmp: Path, results: Results, started: list[Project]
) -> None:
    """`started` gets each project before it starts, so that an interrupted check removes it."""
    password = env["REDIS_PASSWORD"]
    control = Project(
        "mpls-hosts", [ONE_HOST, CONTAINERS / "control-host.yml"],
        {**env, "REDIS_PORT": str(CENTRAL_PORT), "MPLS_RUN_FILE": str(rooms_run_file(tmp))},
    )  # fmt: skip
    hosts = {name: worker_host(name, env, password) for name in PLACEMENT}
    started += [control, *hosts.values()]
    with results.timed("several hosts: up and shaped"):
        control.compose("up", "--detach", "--wait", "redis")
        for name, project in hosts.items():
            project.compose("up", "--detach")
            rate = next(h for h in ROOMS_HOSTS if h.name == name)
            shape_container(project.container("snapshot-redis"), rate, CENTRAL_PORT)
    bed = Testbed(ROOMS_HOSTS, PLACEMENT, tmp)
    runs_done = {}
    for algo in ("mpls", "netmax"):
        with results.timed(f"several hosts: {algo} to {TARGET_ACC:.0%}"):
            summary = run_launcher(
                control, "mpls", "up", "--no-local-workers", "--config", "/config/run.yaml",
                "--queue-mode", "per-worker", "--algo", algo, "--target-acc", str(TARGET_ACC),
                "--until", "420s", "--eval-every", "10", "--run-id", f"{algo}-{secrets.token_hex(3)}",
                "--json",
            )  # fmt: skip
            expect(not summary["failed"], f"{algo}: run failed: {summary['reason']}")
            run_dir = host_run_dir(runs, summary)
            records = list(read_metrics(run_dir))
            scored = summarise(records, TARGET_ACC)[algo]
            reached = scored.time_to_target
            expect(
                reached is not None, f"{algo}: {TARGET_ACC:.0%} not reached ({summary['reason']})"
            )
            links = analyse(bed, records)
            runs_done[algo] = run_dir
            results.facts.setdefault("several_hosts", {})[algo] = {
                "time_to_target": reached, "wall_seconds": summary["wall_seconds"],
                "iterations": scored.iterations,
                "shaped_mbit": {f"{a}<-{b}": bed.link_mbit(a, b) for a in PLACEMENT for b in PLACEMENT if a != b},
                "probed_mbit": rounded(links["probed_mbit"]),
                "pull_mbit": rounded(links["link_mbit"]),
            }  # fmt: skip
            check_shaped(bed, links["probed_mbit"])
    build_report(list(runs_done.values()), tmp / "report", target_acc=TARGET_ACC)
    shutil.copytree(tmp / "report", runs / "several-hosts-report", dirs_exist_ok=True)


def rounded(mbit: dict[str, float | None]) -> dict[str, float | None]:
    return {pair: None if v is None else round(v, 2) for pair, v in mbit.items()}


def check_shaped(bed: Testbed, probed: dict[str, float]) -> None:
    """Each link timed alone (the runtime's probe) runs at the slower host's shaped rate, ±30 %:
    the containers' links are the shaped ones, and nothing else limits them."""
    expect(len(probed) == 6, f"probed host pairs: {sorted(probed)}")
    for pair, mbit in probed.items():
        shaped = bed.link_mbit(*pair.split("<-"))
        expect(
            0.7 * shaped <= mbit <= 1.3 * shaped,
            f"{pair}: probed {mbit:.2f} Mbit/s, shaped {shaped}",
        )
