"""Which simulator engine runs: `--engine auto|sequential|batched`.

`auto` is a fixed rule, not a timing taken at start-up, so that the same seed on the same device
gives the same metrics (the engines agree only to float rounding): sequential on a CPU, where
vectorising many small models measured slower (`scripts/bench_sim.py --engines` prints both),
and batched on a GPU, where many tiny models are launch-bound, when the model qualifies
(`batch_blocker`: no buffers, no dropout, and a training step on two samples that vmap can run —
the same answer for the same model every time)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mpls_celery.errors import ConfigError

if TYPE_CHECKING:  # the CLI names engines without importing torch
    import torch
    from torch import nn

    from mpls_celery.core.batched_training import Batch

ENGINES = ("auto", "sequential", "batched")


def check_engine(requested: str) -> None:
    """ConfigError for a name that is no engine (before anything is built)."""
    if requested not in ENGINES:
        raise ConfigError(f"unknown engine {requested!r}; choose one of: {', '.join(ENGINES)}")


def choose_engine(
    requested: str, model: nn.Module, device: torch.device, sample: Batch | None = None
) -> str:
    """The engine that runs; ConfigError for an unknown name or a model batched cannot train
    (tried on `sample`, two training samples on the device, when batched is in question)."""
    check_engine(requested)
    if requested == "sequential" or (requested == "auto" and device.type == "cpu"):
        return "sequential"
    from mpls_celery.core.batched_training import batch_blocker

    blocker = batch_blocker(model, sample)
    if requested == "batched" and blocker:
        raise ConfigError(f"--engine batched: {blocker}; use --engine sequential")
    return "sequential" if blocker else "batched"
