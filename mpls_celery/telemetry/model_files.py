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

MODELS = "models"


def model_path(run_dir: Path, algorithm: str) -> Path:
    return run_dir / MODELS / f"{algorithm}.safetensors"


def save_averaged_model(
    run_dir: Path, algorithm: str, states: Sequence[State | None], config: Mapping[str, object]
) -> Path | None:
    """The workers' models (None: one with nothing readable) averaged and written, on the CPU,
    whole or not at all, with the algorithm and the run's config (JSON) as its metadata; None
    when no worker has a model."""
    present = [s for s in states if s is not None]
    if not present:
        return None
    averaged = {k: v.detach().cpu().contiguous() for k, v in average_states(present).items()}
    path = model_path(run_dir, algorithm)
    path.parent.mkdir(exist_ok=True)
    partial = path.with_suffix(".partial")
    about = {"algorithm": algorithm, "run_config": orjson.dumps(config).decode()}
    save_file(averaged, str(partial), metadata=about)
    partial.replace(path)
    return path


def load_averaged_model(run_dir: Path, algorithm: str) -> dict[str, torch.Tensor]:
    path = model_path(run_dir, algorithm)
    if not path.is_file():
        raise RunNotFound(f"{run_dir}: no model of {algorithm!r} (no {path.relative_to(run_dir)})")
    try:
        return load_file(str(path))
    except SafetensorError as exc:
        raise MplsError(f"{path}: not a readable safetensors file ({exc})") from None
