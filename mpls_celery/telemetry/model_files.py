"""The model a run leaves behind: `models/<algorithm>.safetensors` in its run directory, the average
of every worker's final model — the one `avg_model_acc` scores, what decentralised training
agrees on. safetensors: no pickle, and it loads without this package
(`safetensors.torch.load_file`, then `model.load_state_dict`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import orjson
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from mpls_celery.core.aggregate import average_states
from mpls_celery.core.layering import State
from mpls_celery.errors import MplsError, RunNotFound
from mpls_celery.telemetry.rundir import MODELS


def model_path(run_dir: Path, algorithm: str, worker: int | None = None) -> Path:
    """The averaged model's file; with `worker`, that worker's own (`save_workers`)."""
    if worker is None:
        return run_dir / MODELS / f"{algorithm}.safetensors"
    return run_dir / MODELS / algorithm / f"worker-{worker}.safetensors"


def save_run_models(
    run_dir: Path,
    algorithm: str,
    states: Sequence[State | None],
    config: Mapping[str, object],
    workers: bool = False,
) -> Path | None:
    """The workers' models (None: one with nothing readable) averaged and written — with
    `workers`, each worker's own beside it — on the CPU, each file whole or not at all, with the
    algorithm and the run's config (JSON) as metadata. The averaged model's path; None when no
    worker has a model."""
    present = [s for s in states if s is not None]
    if not present:
        return None
    about = {"algorithm": algorithm, "run_config": orjson.dumps(config).decode()}
    if workers:
        for worker, state in enumerate(states):
            if state is not None:
                _write(model_path(run_dir, algorithm, worker), state, about)
    path = model_path(run_dir, algorithm)
    _write(path, average_states(present), about)
    return path


def _write(path: Path, state: State, about: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    # copies: safetensors refuses two names for one tensor (tied weights share theirs)
    tensors = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in state.items()}
    try:
        save_file(tensors, str(partial), metadata=about)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)  # left only by a write that failed


def load_run_model(
    run_dir: Path, algorithm: str, worker: int | None = None
) -> dict[str, torch.Tensor]:
    path = model_path(run_dir, algorithm, worker)
    if not path.is_file():
        whose = f"worker {worker}'s model" if worker is not None else "model"
        raise RunNotFound(
            f"{run_dir}: no {whose} of {algorithm!r} (no {path.relative_to(run_dir)})"
        )
    try:
        return load_file(str(path))
    except SafetensorError as exc:
        raise MplsError(f"{path}: not a readable safetensors file ({exc})") from None
