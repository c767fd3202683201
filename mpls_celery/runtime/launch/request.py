"""What a launcher is asked to do: start a run, or re-attach to one (`--resume`)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime

from mpls_celery.config.run_config import RunConfig
from mpls_celery.runtime.options import RuntimeOptions
from mpls_celery.settings import Settings


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


@dataclass
class UpRequest:
    config: RunConfig
    options: RuntimeOptions
    settings: Settings
    redis_url: str | None = None
    local_workers: bool = True
    concurrency: int | None = None
    run_id: str = field(default_factory=new_run_id)
    eval_interval: float = 5.0
    resume: bool = False  # re-attach to run `run_id` (its config comes from Redis)
    import_dirs: tuple[str, ...] = ()  # where the user's model and data code is: its Celery
    # processes get them on their PYTHONPATH
