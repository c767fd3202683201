"""One docker compose project, driven from Python: the compose files, the project name and the
environment that fill its variables. `down()` removes its containers, networks and volumes, and is
safe to call whatever state the project is in."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ONE_HOST = REPO / "docker-compose.yml"  # the stack of one host, or the first of several
WORKER_HOST = REPO / "infra" / "compose.worker-host.yml"  # a host that adds workers


class ComposeError(RuntimeError):
    """A docker or docker compose command failed; the message ends with its stderr."""


def docker(*argv: str, timeout: float = 600, check: bool = True) -> str:
    done = subprocess.run(["docker", *argv], capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise ComposeError(
            f"docker {' '.join(argv[:4])} …: exit {done.returncode}: {done.stderr[-2000:]}"
        )
    return done.stdout


@dataclass(frozen=True)
class ContainerState:
    pid: int  # 0 while it is not running
    running: bool
    restarts: int  # by its restart policy


@dataclass
class Project:
    name: str
    files: Sequence[Path]
    env: Mapping[str, str] = field(default_factory=dict)
    profiles: Sequence[str] = ()

    def base(self) -> list[str]:
        argv = ["docker", "compose", "-p", self.name]
        for path in self.files:
            argv += ["-f", str(path)]
        for profile in self.profiles:
            argv += ["--profile", profile]
        return argv

    def environment(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    def compose(
        self, *argv: str, timeout: float = 900, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*self.base(), *argv], capture_output=True, text=True, timeout=timeout,
            env=self.environment(), cwd=REPO,
        )  # fmt: skip
        if check and done.returncode != 0:
            raise ComposeError(
                f"docker compose -p {self.name} {' '.join(argv[:3])} …: exit {done.returncode}: "
                f"{done.stderr[-3000:]}"
            )
        return done

    def popen(self, *argv: str) -> subprocess.Popen[str]:
        """A long command (a run) in the background; its stdout and stderr are pipes."""
        return subprocess.Popen(
            [*self.base(), *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=self.environment(), cwd=REPO,
        )  # fmt: skip

    def container(self, service: str, index: int = 1) -> str:
        """The id of a service's container (its `index`-th replica)."""
        ids = self.compose("ps", "-q", "--all", service).stdout.split()
        names = {cid: docker("inspect", "-f", "{{.Name}}", cid).strip() for cid in ids}
        wanted = f"/{self.name}-{service}-{index}"
        for cid, name in names.items():
            if name == wanted:
                return cid
        raise ComposeError(f"no container {wanted[1:]} in project {self.name}")

    def state(self, container: str) -> ContainerState:
        fields = docker(
            "inspect", "-f", "{{.State.Pid}} {{.State.Running}} {{.RestartCount}}", container
        )
        pid, running, restarts = fields.split()
        return ContainerState(int(pid), running == "true", int(restarts))

    def down(self) -> None:
        self.compose("down", "--volumes", "--remove-orphans", "--timeout", "5", check=False)
