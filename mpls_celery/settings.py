"""Runtime settings from the environment (prefix MPLS_; REDIS_URL honoured as a fallback).

Algorithm hyper-parameters are plain dataclasses in the core; only process-level knobs live here.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    """The shared MNIST split sits beside the checkout on these machines; use it when present."""
    here = Path(__file__).resolve().parents[2] / "shared" / "datasets"
    return here if here.is_dir() else Path.home() / ".cache" / "mpls" / "data"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MPLS_", extra="ignore")

    redis_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("MPLS_REDIS_URL", "REDIS_URL"),
        description="Redis used as broker, result backend and state store; None = auto/embedded.",
    )
    data_dir: Path = Field(default_factory=_default_data_dir, description="Datasets root.")
    runs_dir: Path = Field(default=Path("runs"), description="Where run directories are written.")
    state_dir: Path = Field(
        default=Path.home() / ".cache" / "mpls",
        description="Small state files (the local `mpls up` and its embedded Redis).",
    )
    visibility_timeout: int = Field(
        default=600, description="Seconds before an unacked task is redelivered; same everywhere."
    )
    torch_threads: int = Field(default=1, description="torch threads per worker process.")
    worker_pool: str = Field(
        default="threads",
        description="Pool of a plain `celery -A mpls_celery worker` (Celery lets this config "
        "override `-P prefork`, so processes that want prefork set MPLS_WORKER_POOL=prefork).",
    )
    redis_ca_certs: str | None = Field(default=None, description="CA bundle for rediss:// URLs.")
    credentials_file: Path | None = Field(
        default=None,
        description="Per-worker Redis credentials of a --secure run (JSON, mode 0600): this host "
        "acts only for the workers listed in it.",
    )
    launcher_watch: str | None = Field(
        default=None,
        description="Set by `mpls up` for the Celery processes it starts: the run whose "
        "launcher they watch (they stop when it is gone for launcher_grace seconds).",
    )
    launcher_grace: float = Field(
        default=60.0, gt=0, description="Seconds such a process goes on without a launcher."
    )
    launcher_pid: int | None = Field(
        default=None, description="The launcher's pid (decides while Redis cannot be reached)."
    )
    device: str | None = Field(
        default=None,
        description="This host trains its workers on this device instead of the run's "
        "(`mpls worker --device cuda:1`).",
    )
    gpu_memory_fraction: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="The share of a GPU's memory each worker process may take (set by `mpls up` "
        "for its own processes: 0.9 / processes); 0 = no limit.",
    )
    snapshot_redis_url: str | None = Field(
        default=None,
        description="This host's own Redis for its workers' layer snapshots (None = central), so "
        "a peer's layers travel over the peer's link.",
    )


def load_settings() -> Settings:
    return Settings()
