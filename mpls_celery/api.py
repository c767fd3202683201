"""The Python API: the same code paths as `mpls sim` and `mpls up`, from a script or a notebook.

    from mpls_celery import api

    config = api.RunConfig(workers=8, model="mypkg.models:small_cnn", dataset="npz:data.npz")
    result = api.simulate(config, algorithms=("mpls", "netmax"), until=60, target_acc=0.8)
    result = api.simulate("run.yaml", "mpls")      # or a run file, or its fields as a dict
    print(result.summary["speedup"], result.run_dir)
    curve = [(e.t, e.mean_acc) for e in result.evaluations("mpls")]

    result = api.run(config, iterations=50)          # Celery + Redis on this machine

A model factory or data loader may be passed as an object (`model=`, `data=`) to `simulate`,
which then runs every algorithm in this process. `run` needs import paths: its Celery processes
import the model and data themselves.

Errors are MplsError: ConfigError for what the user gave (a model that cannot take the data
included). A run that ends otherwise than asked — a worker failed, an algorithm's training
diverged (its records up to there are kept) — returns its Result with `failed` set and the reason
in its summary, as `mpls sim` and `mpls up` write it before they exit 1. Stopped from outside,
`simulate` raises KeyboardInterrupt (Ctrl-C) or `interrupts.Terminated` (SIGTERM, while it runs
in the main thread) once its worker processes are stopped."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mpls_celery.catalog import checked_algorithms
from mpls_celery.config.load import load_run_config
from mpls_celery.config.run_config import RunConfig
from mpls_celery.config.yaml_io import validate
from mpls_celery.core.models import ModelFactory
from mpls_celery.errors import ConfigError
from mpls_celery.plugins import DataLoader, add_import_dirs, given_import_dirs
from mpls_celery.runtime.launch.request import UpRequest
from mpls_celery.runtime.options import RuntimeOptions
from mpls_celery.settings import load_settings
from mpls_celery.sim.runner import ProgressFn, plan_simulation, run_simulation
from mpls_celery.telemetry.model_files import load_run_model
from mpls_celery.telemetry.records import EvalRecord, IterationRecord, Record
from mpls_celery.telemetry.rundir import SUMMARY, read_json, read_metrics, saved_models

__all__ = ["EvalRecord", "IterationRecord", "Result", "RunConfig", "run", "simulate"]

ConfigLike = RunConfig | Mapping[str, Any] | str | Path  # a config, a run file's fields, its path


@dataclass(frozen=True)
class Result:
    run_dir: Path
    summary: dict[str, Any]  # summary.json: per algorithm (simulate) or per worker (run)

    @property
    def failed(self) -> bool:
        """The run did not end as asked (`summary["reason"]` says why): the commands exit 1."""
        return bool(self.summary.get("failed"))

    def records(self) -> list[Record]:
        """The run's telemetry in order (metrics.jsonl, docs/run-directory.md): each local
        iteration, evaluation and link probe, as the report reads them."""
        return list(read_metrics(self.run_dir))

    def model_state(
        self, algorithm: str | None = None, worker: int | None = None
    ) -> dict[str, torch.Tensor]:
        """The run's model: every worker's final model averaged (the one `avg_model_acc`
        scores), for `model.load_state_dict`; of `algorithm` where several ran side by side;
        `worker`: that worker's own (a run with `save_workers`)."""
        if algorithm is None:
            algorithm = _only_algorithm(self.run_dir)
        return load_run_model(self.run_dir, algorithm, worker)

    def evaluations(self, algorithm: str | None = None) -> list[EvalRecord]:
        """The accuracy curve: every evaluation (t, epoch, mean_acc, avg_model_acc, …), of one
        algorithm where several ran side by side."""
        return [
            r for r in self.records() if isinstance(r, EvalRecord) and algorithm in (None, r.algo)
        ]


def _only_algorithm(run_dir: Path) -> str:
    saved = list(saved_models(run_dir))
    if len(saved) != 1:
        raise ConfigError(
            f"{run_dir}: name the algorithm whose model you want: "
            + (", ".join(saved) if saved else "none was saved (it diverged, or no worker had one)")
        )
    return saved[0]


def as_config(config: ConfigLike) -> tuple[RunConfig, list[Path]]:
    """The config a script has at hand, checked as `--config` checks a run file; and the folder
    its model and data code is imported from (a run file's, as with `--config`)."""
    if isinstance(config, RunConfig):
        return config, []
    if isinstance(config, Mapping):
        return validate(RunConfig, dict(config), "config"), []
    if isinstance(config, str | Path):
        path = Path(config)
        return load_run_config(path), [path.parent if path.suffix else path]
    raise ConfigError(
        f"config: expected a RunConfig, a mapping of run-file fields or a run file's path, "
        f"got {type(config).__name__}"
    )


def simulate(
    config: ConfigLike,
    algorithms: str | Sequence[str] = ("mpls",),
    *,
    until: float | None = None,
    epochs: int | None = None,
    target_acc: float | None = None,
    stop_at_target: bool = False,
    eval_every: float | None = None,
    eval_samples: int = 200,
    step_seconds: float | None = None,
    jobs: int = 1,
    out: Path | None = None,
    model: ModelFactory | None = None,
    data: DataLoader | None = None,
    engine: str = "auto",
    progress: ProgressFn | None = None,
    save_workers: bool = False,
) -> Result:
    """Run `algorithms` ("mpls,netmax", or a sequence of names) side by side in virtual time
    (`mpls sim`); `until` in virtual seconds (300 unless `epochs` is given); `engine`: auto |
    sequential | batched. `progress(algorithm, virtual_seconds, epoch)` is called as each
    advances (what `mpls sim` draws its bars from), in this process."""
    chosen = checked_algorithms(algorithms)
    config, folders = as_config(config)
    settings = load_settings()
    add_import_dirs([Path.cwd(), *folders])
    request = plan_simulation(
        config, chosen, out or settings.runs_dir, settings.data_dir,
        until=until, epochs=epochs, eval_every=eval_every, eval_samples=eval_samples,
        step_seconds=step_seconds, target_acc=target_acc, stop_at_target=stop_at_target,
        jobs=jobs, model=model, loader=data, engine=engine, save_workers=save_workers,
    )  # fmt: skip
    run_dir = run_simulation(request, progress)
    return Result(run_dir, read_json(run_dir / SUMMARY))


def run(
    config: ConfigLike,
    *,
    iterations: int | None = None,
    until: float | None = None,
    target_acc: float | None = None,
    redis_url: str | None = None,
    local_workers: bool = True,
    eval_every: float = 5.0,
    import_dirs: tuple[Path, ...] = (),
    model: object = None,
    data: object = None,
    **options: Any,
) -> Result:
    """Train for real (`mpls up`): Redis reachable or embedded, Celery processes on this
    machine; `until` in wall seconds; `options` are RuntimeOptions fields (queue_mode, ...)."""
    if model is not None or data is not None:
        raise ConfigError(
            "run() imports the model and data in its Celery processes: give import paths in the "
            "config (model='package.module:factory', dataset='package.module:loader'), not objects"
        )
    from mpls_celery.runtime.up import run_up

    config, own = as_config(config)
    settings = load_settings()
    folders = add_import_dirs([Path.cwd(), *own, *given_import_dirs(import_dirs)])
    config = config.with_overrides(**{"training.iterations": iterations})  # checked, as a flag
    runtime = RuntimeOptions.for_run(
        config, iterations is not None, until_seconds=until, target_acc=target_acc, **options
    )
    request = UpRequest(config, runtime, settings, redis_url, local_workers,
                        eval_interval=eval_every, import_dirs=tuple(folders))  # fmt: skip
    summary = run_up(request)
    return Result(Path(str(summary["run_dir"])), summary)
