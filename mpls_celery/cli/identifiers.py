"""Run ids and run directories as users type them: checked before anything looks for them, so a mistyped or
10,000-character argument gets one line, never a traceback from a file system or Redis."""

from __future__ import annotations

import re
from pathlib import Path

from mpls_celery.config.yaml_io import shown
from mpls_celery.errors import ConfigError, RunNotFound
from mpls_celery.telemetry.rundir import METRICS

RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")


def is_run_id(value: str) -> bool:
    return RUN_ID.fullmatch(value) is not None


def check_run_id(value: str) -> str:
    if not is_run_id(value):
        raise ConfigError(
            f"{shown(value)!r} is not a run id (letters, digits, '.', '_', '-'; at most 80)"
        )
    return value


def check_run_dir(path: Path) -> Path:
    """A run directory (it holds metrics.jsonl), else one line naming the argument."""
    try:
        ok = (path / METRICS).is_file()
    except OSError:  # a name too long for the file system, ...
        ok = False
    if not ok:
        raise RunNotFound(f"{shown(path)}: no run directory there (no {METRICS})")
    return path
