"""Runtime knobs of one run (stored with the run in Redis so every process agrees on them)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mpls_celery.config.run_config import RunConfig
from mpls_celery.config.yaml_io import validate
from mpls_celery.core.link_model import LinkSpeeds
from mpls_celery.errors import ConfigError


class RuntimeOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    iterations: int | None = Field(30, ge=1, description="local iterations per worker")
    until_seconds: float | None = Field(None, gt=0, description="stop after this wall time")
    target_acc: float | None = Field(None, ge=0, le=1, description="stop at this mean accuracy")
    slice_seconds: float = Field(15.0, gt=0, description="a slice task's time budget")
    pull_deadline: float = Field(10.0, gt=0, description="longest wait for an aggregation")
    lease_seconds: float = Field(
        6.0, gt=0, description="a slice that stops renewing its lease is replaced after this"
    )
    keep_versions: int = Field(2, ge=1, description="versions kept per worker in Redis")
    peer_timeout: float = Field(30.0, gt=0, description="a peer silent this long is excluded")
    dead_after: float | None = Field(
        None, gt=0, description="a worker silent this long is dead (default: peer_timeout)"
    )
    min_workers: int = Field(
        1, ge=1, description="end the run when fewer workers than this are alive"
    )
    eval_every: int = Field(
        10, ge=1, description="a worker evaluates itself every N iterations, at most once a second"
    )
    eval_samples: int = Field(500, ge=1, description="test samples per worker evaluation")
    save_workers: bool = Field(
        False, description="at the end, each worker's model too, beside the averaged one"
    )
    queue_mode: Literal["shared", "per-worker"] = Field(
        "shared", description="'per-worker': worker i's slices go to queue mpls.node.<i>"
    )
    secure: bool = Field(False, description="per-worker Redis ACL users (Redis >= 7)")
    link_speeds: LinkSpeeds = Field(
        LinkSpeeds.PROBED,
        description="probed: each link timed alone before the first pull (Step 1's B_s); "
        "achieved: EWMA of the rates pulls got",
    )
    probe_wait: float = Field(
        60.0, gt=0, description="longest wait (s from run start) for the other workers' probes"
    )
    start_timeout: float = Field(
        300.0,
        gt=0,
        description="a worker that has not finished its first iteration is dead only after this "
        "(start-up at scale: loading data and models, probing links)",
    )
    resource_wait: float = Field(
        60.0,
        gt=0,
        description="longest pause while Redis refuses writes (disk full, maxmemory) before "
        "the run fails",
    )
    launcher_grace: float = Field(
        60.0,
        gt=0,
        description="seconds the Celery processes a launcher started go on without it (a "
        "launcher may re-attach meanwhile: mpls up --resume)",
    )

    @property
    def per_worker_queues(self) -> bool:
        return self.queue_mode == "per-worker"

    @property
    def dead_seconds(self) -> float:
        return self.dead_after if self.dead_after is not None else self.peer_timeout

    @property
    def start_seconds(self) -> float:
        return max(self.start_timeout, self.dead_seconds)

    run_ttl: int = Field(86_400, ge=60, description="seconds a finished run's keys are kept")

    @classmethod
    def for_run(cls, cfg: RunConfig, iterations_given: bool, **given: Any) -> RuntimeOptions:
        """The options of `mpls up` (None = not given). A time limit or an accuracy target
        replaces the iteration limit unless --iterations is given too; with none of the three,
        the run config's iterations (or 30) end the run."""
        stops_otherwise = given.get("until_seconds") or given.get("target_acc")
        fields = {k: v for k, v in given.items() if v is not None}
        fields["iterations"] = (
            None if stops_otherwise and not iterations_given else cfg.training.iterations or 30
        )
        fields["eval_every"] = cfg.training.eval_every
        options = validate(cls, fields, "options")
        if options.min_workers > cfg.workers:  # it would end the run as soon as it started
            raise ConfigError(
                f"options: min_workers {options.min_workers} is more than the run's "
                f"{cfg.workers} workers"
            )
        return options
