"""The runs `mpls up` started on this machine. Each launcher leaves one small file per run
(state_dir/runs/<run>.json, mode 0600: the Redis URL may hold a password) with what it started —
its own pid, its embedded Redis (pid, data folder), its Celery processes' pids — so that `mpls
status`, `runs`, `down`, `tui` and `up --resume` find every local run, also one whose launcher
died: such a file is kept (and shown as such) as long as its Redis lives or can be restarted
from its data, and removed only by its launcher's clean end or `mpls down`."""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import orjson

from mpls_celery.runtime.backend.pids import process_exists
from mpls_celery.runtime.backend.private_files import write_private
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
    redis_data_dir: str | None = None  # the embedded server's AOF folder (resume restarts it)
    celery_pids: list[int] = field(default_factory=list)  # the Celery processes it started
    local_workers: bool = True  # whether it started Celery processes (a resume does again)

    @property
    def launcher_alive(self) -> bool:
        return process_exists(self.launcher_pid)

    @property
    def redis_alive(self) -> bool:
        return self.redis_pid is not None and process_exists(self.redis_pid)

    @property
    def resumable(self) -> bool:
        """Its Redis lives, or is an embedded one that can start again from its data."""
        return not self.embedded or self.redis_alive or _has_data(self.redis_data_dir)

    def with_celery(self, pids: list[int]) -> LocalRun:
        return replace(self, celery_pids=list(pids))


def _folder(settings: Settings) -> Path:
    return settings.state_dir / "runs"


def register(settings: Settings, run: LocalRun) -> Path:
    return write_private(_folder(settings) / f"{run.run_id}.json", orjson.dumps(asdict(run)))


def unregister(settings: Settings, run_id: str) -> None:
    (_folder(settings) / f"{run_id}.json").unlink(missing_ok=True)


def local_runs(settings: Settings) -> list[LocalRun]:
    """Newest first: every local run whose launcher lives or that can be resumed (files of runs
    that are neither are removed)."""
    out = []
    for path in sorted(_folder(settings).glob("*.json")):
        try:
            run = LocalRun(**orjson.loads(path.read_bytes()))
        except (OSError, orjson.JSONDecodeError, TypeError):
            continue
        if run.launcher_alive or run.resumable:
            out.append(run)
        else:
            with contextlib.suppress(OSError):
                path.unlink()
    return sorted(out, key=lambda r: r.started, reverse=True)


def live_runs(settings: Settings) -> list[LocalRun]:
    """The local runs whose Redis can be reached now (launcher alive, or Redis still up)."""
    return [r for r in local_runs(settings) if r.launcher_alive or r.redis_alive or not r.embedded]


def find(settings: Settings, run_id: str) -> LocalRun | None:
    return next((r for r in local_runs(settings) if r.run_id == run_id), None)


def _has_data(folder: str | None) -> bool:
    return folder is not None and Path(folder).is_dir() and any(Path(folder).iterdir())
