"""The runs `mpls up` is running on this machine. Each launcher leaves one small file while it
runs (state_dir/runs/<run>.json, mode 0600: the Redis URL may hold a password), so `mpls status`,
`runs`, `down` and `tui` find every live local run and its own Redis — two runs never share one
file, and one ending never hides the other. Files of launchers that are gone are removed."""

from __future__ import annotations

import contextlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

from mpls_celery.runtime.private_files import write_private
from mpls_celery.settings import Settings


@dataclass(frozen=True)
class LocalRun:
    run_id: str
    redis_url: str
    launcher_pid: int
    run_dir: str
    embedded: bool
    redis_pid: int | None = None
    started: float = 0.0


def _folder(settings: Settings) -> Path:
    return settings.state_dir / "runs"


def register(settings: Settings, run: LocalRun) -> Path:
    return write_private(_folder(settings) / f"{run.run_id}.json", orjson.dumps(asdict(run)))


def unregister(settings: Settings, run_id: str) -> None:
    (_folder(settings) / f"{run_id}.json").unlink(missing_ok=True)


def live_runs(settings: Settings) -> list[LocalRun]:
    """Newest first; a file whose launcher no longer exists is removed."""
    out = []
    for path in sorted(_folder(settings).glob("*.json")):
        try:
            run = LocalRun(**orjson.loads(path.read_bytes()))
        except (OSError, orjson.JSONDecodeError, TypeError):
            continue
        if process_exists(run.launcher_pid):
            out.append(run)
        else:
            with contextlib.suppress(OSError):
                path.unlink()
    return sorted(out, key=lambda r: r.started, reverse=True)


def find(settings: Settings, run_id: str) -> LocalRun | None:
    return next((r for r in live_runs(settings) if r.run_id == run_id), None)


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
