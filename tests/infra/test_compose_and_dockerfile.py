"""Offline checks of the container files, for every machine (the stacks themselves run in
`make compose-check`, which needs root and Docker): the compose files against the Compose
specification schema (vendored by check-jsonschema), the Dockerfiles linted with hadolint, every
command the files run one the code supports, and the image's dependency list from pyproject.toml."""

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mpls_celery.cli.app import main
from tests.conftest import REPO

COMPOSE_FILES = [
    REPO / "docker-compose.yml",
    REPO / "infra" / "compose.worker-host.yml",
    *sorted((REPO / "infra" / "containers").glob("*.yml")),
]
DOCKERFILES = [
    REPO / "infra" / "Dockerfile",
    *sorted((REPO / "infra" / "images").glob("*.Dockerfile")),
]
BIN = Path(sys.executable).parent


def test_compose_files_match_the_compose_spec():
    done = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", *map(str, COMPOSE_FILES)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.skipif(
    not (BIN / "hadolint").exists() and not shutil.which("hadolint"),
    reason="hadolint not installed",
)
def test_dockerfiles_lint_clean():
    hadolint = str(BIN / "hadolint") if (BIN / "hadolint").exists() else "hadolint"
    done = subprocess.run(
        [hadolint, *map(str, DOCKERFILES)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def commands() -> list[list[str]]:
    """Each service's command; for `sh -c` scripts, every `exec …` inside them."""
    found = []
    for path in COMPOSE_FILES:
        for service in (yaml.safe_load(path.read_text()).get("services") or {}).values():
            command = service.get("command") or []
            if command[:2] == ["sh", "-c"]:
                found += [shlex.split(part) for part in re.findall(r"exec ([^;]+)", command[2])]
            elif command and command[0] in ("mpls", "celery"):
                found.append(command)
    return found


def test_every_command_in_the_compose_files_is_supported(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    seen = commands()
    assert any(c[:2] == ["mpls", "up"] for c in seen) and any(c[0] == "celery" for c in seen)
    for command in seen:
        if command[0] == "celery":
            assert command[1:4] == ["-A", "mpls_celery", "worker"]
            continue
        with pytest.raises(SystemExit) as done:
            main([command[1], "--help"])
        assert done.value.code == 0
        help_text = capsys.readouterr().out
        for flag in (arg for arg in command[2:] if arg.startswith("--")):
            assert flag in help_text, f"{command[1]} does not accept {flag}"


def test_compose_run_config_is_valid():
    from mpls_celery.config.load import load_run_config

    assert load_run_config(REPO / "infra" / "run.yaml").workers == 6


def test_the_image_installs_every_dependency_but_torch_from_pyproject():
    """The image installs torch from its build arguments, then the rest of pyproject's list."""
    import tomllib

    done = subprocess.run(
        [sys.executable, str(REPO / "infra" / "images" / "requirements.py"),
         str(REPO / "pyproject.toml"), "torch", "torchvision"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    listed = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    printed = done.stdout.splitlines()
    assert printed == [r for r in listed if not r.startswith(("torch==", "torchvision=="))]
    assert "celery[redis]>=5.5,<6" in printed and len(printed) == len(listed) - 2


def test_images_take_their_bases_and_torch_from_build_arguments():
    for path in (REPO / "docker-compose.yml", REPO / "infra" / "compose.worker-host.yml"):
        services = yaml.safe_load(path.read_text())["services"]
        build = services["worker"]["build"]
        assert set(build["args"]) == {"BASE_IMAGE", "TORCH_REQUIREMENTS", "TORCH_INDEX_URL"}
        redis_service = services.get("redis") or services["snapshot-redis"]
        assert redis_service["image"].startswith("${REDIS_IMAGE:-")
    dockerfile = (REPO / "infra" / "Dockerfile").read_text()
    assert "ARG BASE_IMAGE=python:3.11-slim" in dockerfile
