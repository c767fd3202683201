"""What a simulation is asked for — horizon, evaluation cadence, step time, target, processes —
checked once where `mpls sim`, its replays and `api.simulate` meet: one line for a value no
simulation can have (a step of no time would run virtual time backwards or not at all)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from mpls_celery.config.yaml_io import validate


class SimLimits(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    until: float | None = Field(None, gt=0, description="virtual seconds")
    epochs: int | None = Field(None, ge=1)
    eval_every: float | None = Field(None, gt=0, description="virtual seconds")
    eval_every_epochs: int | None = Field(None, ge=1)
    eval_samples: int = Field(200, ge=1)
    step_seconds: float | None = Field(None, gt=0)
    target_acc: float | None = Field(None, ge=0, le=1)
    jobs: int = Field(1, ge=1)


def check_limits(**values: float | int | None) -> SimLimits:
    """ConfigError 'options: field: problem' for the first bad value."""
    return validate(SimLimits, values, "options")
