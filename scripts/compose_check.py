"""`make compose-check`: the docker compose stacks built and run end to end on this machine (root and
minutes, so not in `.ci/run`; `infra/images/install-docker.sh` first on a machine without Docker).

1. images: the bases from Debian's packages (`infra/images/build-bases.sh`) unless `--bases public`,
   the project image with torch from the machine's wheelhouse; their sizes;
2. one host (docker-compose.yml): Redis with a password and AOF, two worker containers, the launcher
   running infra/run.yaml to its summary, read back with `mpls report`; `mpls tui` rendered once;
3. faults there: a worker container's process killed mid-run (its restart policy brings it back) and
   the Redis container restarted (AOF volume): the run completes, every iteration recorded once;
4. several hosts: a control host (central Redis, launcher) and three worker hosts as separate compose
   projects on their own networks, joined through published ports, each host's link shaped with tc
   to the `rooms` rates; MPLS then NetMax to a target; the per-link matrix against the shaping.
Everything is torn down at the end, also on SIGINT/SIGTERM. Results: OUT/compose-check.{md,json}.

    .venv/bin/python -m scripts.compose_check [--bases local|public] [--out runs/compose-check]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from types import FrameType

from infra.containers.check.images import build_env, build_images
from infra.containers.check.one_host import faults, one_host, one_host_project
from infra.containers.check.results import CheckFailed, Results, markdown
from infra.containers.check.several_hosts import CENTRAL_PORT, several_hosts
from infra.containers.project import REPO, ComposeError, Project
from mpls_celery.telemetry.rundir import write_json


def interrupted(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bases", choices=("local", "public"), default="local")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "compose-check")
    parser.add_argument("--skip", default="", help="comma-separated: faults,hosts")
    args = parser.parse_args(argv)
    if os.geteuid() != 0 or shutil.which("docker") is None:
        raise SystemExit(
            "error: compose-check needs root and docker (infra/images/install-docker.sh)"
        )
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, interrupted)
    results = Results()
    projects: list[Project] = []
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="compose-check-") as folder:
        tmp = Path(folder)
        runs, data = args.out / "runs", tmp / "data"
        for path in (runs, data):
            path.mkdir(parents=True, exist_ok=True)
        shutil.chown(runs, user=10001, group=10001)  # the image's user writes the run directories
        try:
            with results.timed("images"):
                env = build_env(args.bases)
                build_images(args.bases, env, results)
            env |= {"REDIS_PASSWORD": secrets.token_hex(12), "MPLS_RUNS_HOST_DIR": str(runs),
                    "MPLS_DATA_HOST_DIR": str(data), "MPLS_CERTS_DIR": str(data),
                    "REDIS_PORT": str(CENTRAL_PORT)}  # fmt: skip
            projects.append(one_host_project(env))
            one_host(projects[0], runs, results)
            if "faults" not in args.skip:
                faults(projects[0], runs, results)
            projects[0].down()
            if "hosts" not in args.skip:
                several_hosts(env, runs, tmp, results, projects)
        except (CheckFailed, ComposeError, subprocess.SubprocessError) as exc:
            print(f"error: {exc}")
            return 1
        except KeyboardInterrupt as exc:
            print(f"interrupted ({exc}): tearing down")
            return 130
        finally:
            for project in projects:
                project.down()
            (args.out / "compose-check.md").write_text(markdown(results))
            write_json(
                args.out / "compose-check.json", {"seconds": results.seconds, **results.facts}
            )
    print(markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
