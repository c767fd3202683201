"""A run directory: manifest.json (what ran), metrics.jsonl (every record), summary.json."""

from __future__ import annotations

import logging
import platform
import subprocess
import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import orjson

from mpls_celery.errors import RunNotFound, TelemetryError
from mpls_celery.telemetry.records import Record, parse_record, to_json

MANIFEST, METRICS, SUMMARY = "manifest.json", "metrics.jsonl", "summary.json"
MODELS = "models"  # the models a run leaves (telemetry/model_files.py)
log = logging.getLogger(__name__)
_PACKAGES = ("mpls-celery", "torch", "numpy", "celery", "redis")


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_revision() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def new_run_dir(root: Path, prefix: str) -> Path:
    """A folder of its own, also when other processes start runs in the same second: the
    creation itself decides (a check, then a mkdir, would let two take one name)."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    path, suffix = root / f"{prefix}-{stamp}", 1
    while True:
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            suffix += 1
            path = root / f"{prefix}-{stamp}-{suffix}"


def saved_models(run_dir: Path) -> dict[str, str]:
    """Algorithm → its averaged model's file, relative to the run directory (summary.json's
    `models`): those the run left."""
    found = sorted((run_dir / MODELS).glob("*.safetensors"))
    return {path.stem: str(path.relative_to(run_dir)) for path in found}


def write_json(path: Path, data: Any) -> None:
    path.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))


def write_manifest(run_dir: Path, kind: str, config: dict[str, Any], **extra: Any) -> None:
    write_json(
        run_dir / MANIFEST,
        {
            "kind": kind,
            "config": config,
            "versions": package_versions(),
            "git_revision": git_revision(),
            "created": datetime.now(UTC).isoformat(),
            "argv": sys.argv,
            **extra,
        },
    )


def append_metrics(path: Path, records: Iterable[Record]) -> None:
    """JSON lines, appended: a live run adds to its metrics.jsonl as records arrive."""
    with path.open("ab") as handle:
        for record in records:
            handle.write(to_json(record) + b"\n")


def read_json(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise RunNotFound(f"{path} does not exist") from None
    except orjson.JSONDecodeError as exc:
        raise RunNotFound(f"{path}: not valid JSON ({exc})") from None


def read_metrics(run_dir: Path) -> Iterator[Record]:
    """Every record in order. A last line without its newline that is no record — what a crash
    mid-append leaves — is skipped with a warning naming the file and line; a bad line anywhere
    else is an error (TelemetryError)."""
    path = run_dir / METRICS
    if not path.is_file():
        raise RunNotFound(f"{run_dir} is not a run directory (no {METRICS})")
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield parse_record(line)
            except TelemetryError as exc:
                if line.endswith(b"\n"):
                    raise TelemetryError(f"{path}:{number}: {exc}") from None
                log.warning("%s:%d: skipping a partial last line (%s)", path, number, exc)
