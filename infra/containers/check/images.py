"""The images compose-check runs: bases from Debian's packages (or the public ones), the project
image with torch from the machine's wheelhouse."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from infra.containers.check.results import Results
from infra.containers.project import ONE_HOST, REPO, Project, docker

IMAGE = "mpls-celery:latest"
LOCAL_BASES = {"BASE_IMAGE": "mpls-python:3.11", "REDIS_IMAGE": "mpls-redis:7"}


def torch_wheel() -> Path | None:
    """The machine's CPU build of torch, if it has one (pip's find-links folder here)."""
    found = sorted(Path(os.environ.get("MPLS_WHEELHOUSE", "/opt/wheels")).glob("torch-*+cpu-*.whl"))
    return found[-1] if found else None


def build_env(bases: str) -> dict[str, str]:
    """The compose variables the images are built from, and their inputs put in place."""
    images = REPO / "infra" / "images"
    bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    if bundle.exists():  # a TLS-intercepting proxy's CA, if any, is in the host's bundle
        shutil.copyfile(bundle, images / "ca" / "host-bundle.crt")
    if bases == "public":
        return {}
    env = dict(LOCAL_BASES)
    wheel = torch_wheel()
    if wheel:
        shutil.copyfile(wheel, images / "wheelhouse" / wheel.name)
        version = wheel.name.split("-")[1]
        env["TORCH_REQUIREMENTS"] = f"torch=={version}"  # torchvision: PyPI's needs CUDA torch
    return env


def build_images(bases: str, env: dict[str, str], results: Results) -> None:
    if bases == "local":
        subprocess.run([str(REPO / "infra" / "images" / "build-bases.sh")], check=True)
    Project("mpls-build", [ONE_HOST], {**env, "REDIS_PASSWORD": "unused"}).compose(
        "build", "worker", timeout=1800
    )
    names = [IMAGE, *(env[k] for k in ("BASE_IMAGE", "REDIS_IMAGE") if k in env)]
    results.facts["image_mb"] = {
        name: round(int(docker("image", "inspect", "-f", "{{.Size}}", name)) / 1e6)
        for name in names
    }
