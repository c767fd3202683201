"""Run several algorithms on the same experiment (partition, topology, profile trace, seed), in
parallel processes, and write one run directory with their records and a side-by-side summary."""

from __future__ import annotations

import multiprocessing as mp
import queue as queue_module
import signal
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from mpls_celery.config.run_config import RunConfig
from mpls_celery.core.divergence import Diverged
from mpls_celery.core.models import ModelFactory
from mpls_celery.core.network_profile import NetworkProfile, SimNetwork, uniform_profile
from mpls_celery.experiment import Experiment, build_experiment
from mpls_celery.interrupts import Terminated, sigterm_raises
from mpls_celery.plugins import DataLoader
from mpls_celery.sim.engine import SimOptions, Simulation
from mpls_celery.sim.engine_choice import choose_engine
from mpls_celery.sim.limits import check_limits
from mpls_celery.telemetry.model_files import save_run_models
from mpls_celery.telemetry.rundir import (
    METRICS,
    SUMMARY,
    append_metrics,
    new_run_dir,
    read_metrics,
    saved_models,
    write_json,
    write_manifest,
)
from mpls_celery.telemetry.summary import summary_document

# Seconds of one SGD step (batch 64) measured on this project's 2-core CI machine, 1 thread; used
# when the profile gives none, so virtual times stay deterministic.
DEFAULT_STEP_SECONDS = {"lenet5": 0.006, "mlp": 0.0006, "nin": 0.12, "resnet18": 0.35}
# A model of the user's own, with no step time given: a fixed guess per parameter (LeNet-5's is
# 1e-7 s; deterministic, unlike a measurement). Give network.step_seconds for times that mean more.
STEP_SECONDS_PER_PARAMETER = 1e-7
PARTS = "parts"  # each algorithm's records, until they are joined


@dataclass(frozen=True)
class SimRequest:
    config: RunConfig
    algorithms: tuple[str, ...]
    options: SimOptions  # algorithm field is replaced per algorithm
    data_dir: Path
    runs_dir: Path
    jobs: int = 1
    threads: int = 1
    network: SimNetwork | None = None  # instead of the config's profile (a replayed run)
    replay_of: str | None = None  # the run directory whose trace `network` is
    model: ModelFactory | None = None  # objects instead of the config's import paths (the
    loader: DataLoader | None = None  # Python API): the algorithms then run in this process


ProgressFn = Callable[[str, float, int], None]


def sim_profile(cfg: RunConfig) -> NetworkProfile:
    """The simulator always needs link speeds: 'none' means a uniform 100 Mbit/s network."""
    from mpls_celery.config.profiles import load_profile

    return load_profile(cfg.network.profile, cfg.workers, cfg.seed) or uniform_profile(cfg.workers)


def resolve_step_seconds(
    cfg: RunConfig, profile: NetworkProfile, given: float | None, parameters: int = 0
) -> float:
    if given is not None:
        return given
    if cfg.network.step_seconds is not None:
        return cfg.network.step_seconds
    known = profile.reference_step_seconds(cfg.model) or DEFAULT_STEP_SECONDS.get(cfg.model)
    return known or max(1e-3, parameters * STEP_SECONDS_PER_PARAMETER)


def plan_simulation(
    cfg: RunConfig,
    algorithms: tuple[str, ...],
    runs_dir: Path,
    data_dir: Path,
    *,
    until: float | None = None,
    epochs: int | None = None,
    eval_every: float | None = None,
    eval_every_epochs: int | None = None,
    eval_samples: int = 200,
    step_seconds: float | None = None,
    target_acc: float | None = None,
    stop_at_target: bool = False,
    jobs: int = 1,
    model: ModelFactory | None = None,
    loader: DataLoader | None = None,
    engine: str = "auto",
    save_workers: bool = False,
) -> SimRequest:
    """What `mpls sim` and the Python API's `simulate` run: 300 virtual s unless a horizon or
    an epoch count is given; evaluations every horizon/300 s (0.5 to 5 s). The experiment is
    built once here, so a bad model or dataset fails before anything starts."""
    check_limits(until=until, epochs=epochs, eval_every=eval_every,
                 eval_every_epochs=eval_every_epochs, eval_samples=eval_samples,
                 step_seconds=step_seconds, target_acc=target_acc, jobs=jobs)  # fmt: skip
    horizon = until if until is not None else (None if epochs else 300.0)
    exp = build_experiment(cfg, data_dir, model=model, loader=loader)  # fails before any start
    for algorithm in algorithms:  # each of the user's own: imported and tried before any starts
        exp.worker_step(0, algorithm)
    template = exp.new_model()
    parameters = sum(p.numel() for p in template.parameters())
    options = SimOptions(
        algorithm=algorithms[0],
        until=horizon,
        epochs=epochs,
        eval_every=eval_every or min(max((horizon or 300.0) / 300, 0.5), 5.0),
        eval_every_epochs=eval_every_epochs,
        eval_samples=eval_samples,
        step_seconds=resolve_step_seconds(cfg, sim_profile(cfg), step_seconds, parameters),
        target_acc=target_acc,
        stop_at_target=stop_at_target,
        engine=choose_engine(engine, template, exp.device, _two_samples(exp)),  # the one that runs
        save_workers=save_workers,
    )
    in_process = model is not None or loader is not None
    return SimRequest(cfg, algorithms, options, data_dir, runs_dir, jobs=1 if in_process else jobs,
                      model=model, loader=loader)  # fmt: skip


def _two_samples(exp: Experiment) -> tuple[torch.Tensor, torch.Tensor]:
    """What the engine choice tries a model on (on the run's device)."""
    train = exp.data.train
    return train.x[:2].to(exp.device), train.y[:2].to(exp.device)


def _run_one(
    request: SimRequest, algorithm: str, run_dir: Path, progress: Any | None = None
) -> str | None:
    """One algorithm's run, its records and its averaged model written; how it diverged, if it
    did (the records up to there are kept: beside the others, a divergence is a result)."""
    torch.set_num_threads(request.threads)
    torch.manual_seed(request.config.seed)
    exp = build_experiment(
        request.config, request.data_dir, model=request.model, loader=request.loader
    )
    profile = request.network or exp.profile or uniform_profile(request.config.workers)
    sim = Simulation(exp, replace(request.options, algorithm=algorithm), profile)

    def report(t: float, epoch: int) -> None:
        if progress is not None:
            progress.put((algorithm, t, epoch))

    diverged = None
    try:
        records = sim.run(report)
    except Diverged as exc:  # named by algorithm: several run side by side
        records, diverged = sim.records, f"{algorithm}: {exc}"
    append_metrics(_part(run_dir, algorithm), records)  # a fresh file per algorithm
    if diverged is None:
        # the config this model was trained under: the comparison's, with its own algorithm
        config = request.config.model_dump(mode="json") | {"algorithm": algorithm}
        states, workers = sim.final_states(), request.options.save_workers
        save_run_models(run_dir, algorithm, states, config, workers)
    horizon = request.options.until if diverged is None else None  # a diverged run ends early
    report(horizon or (records[-1].t if records else 0.0), sim.epoch)
    return diverged


def run_simulation(request: SimRequest, on_progress: ProgressFn | None = None) -> Path:
    run_dir = new_run_dir(request.runs_dir, "sim")
    (run_dir / PARTS).mkdir()
    write_manifest(
        run_dir,
        "sim",
        request.config.model_dump(mode="json"),
        algorithms=list(request.algorithms),
        options={k: v for k, v in asdict(request.options).items() if k != "algorithm"},
        **({"replay_of": request.replay_of} if request.replay_of else {}),
    )
    started = time.monotonic()
    paths = {algo: _part(run_dir, algo) for algo in request.algorithms}
    with sigterm_raises():  # `kill`, timeout, a scheduler's cancel: like Ctrl-C, children too
        if request.jobs <= 1 or len(request.algorithms) == 1:
            ends = [_run_one(request, algo, run_dir, _Direct(on_progress)) for algo in paths]
        else:
            ends = _run_parallel(request, run_dir, on_progress)
    diverged = {algo: end for algo, end in zip(paths, ends, strict=True) if end is not None}
    with (run_dir / METRICS).open("wb") as out:
        for algo in request.algorithms:  # fixed order: same inputs → same bytes
            out.write(paths[algo].read_bytes())
            paths[algo].unlink()
    (run_dir / PARTS).rmdir()
    failure = {"failed": True, "reason": "; ".join(diverged.values()), "diverged": diverged}
    summary = summary_document(
        read_metrics(run_dir),
        request.options.target_acc,
        order=list(request.algorithms),
        wall_seconds=round(time.monotonic() - started, 2),
        run_dir=str(run_dir),
        models=saved_models(run_dir),
        **(failure if diverged else {}),
    )
    write_json(run_dir / SUMMARY, summary)
    return run_dir


class _Direct:
    """Same interface as a multiprocessing queue, for in-process runs."""

    def __init__(self, on_progress: ProgressFn | None) -> None:
        self.on_progress = on_progress

    def put(self, item: tuple[str, float, int]) -> None:
        if self.on_progress:
            self.on_progress(*item)


def _part(run_dir: Path, algorithm: str) -> Path:
    """Where one algorithm's records go until they are joined in a fixed order."""
    return run_dir / PARTS / f"{algorithm}.jsonl"


def _run_parallel(
    request: SimRequest, run_dir: Path, on_progress: ProgressFn | None
) -> list[str | None]:
    context = mp.get_context("spawn")
    others = set(mp.active_children())  # a caller's own (the API in a notebook): never ours to end
    with (
        context.Manager() as manager,
        ProcessPoolExecutor(
            request.jobs, mp_context=context, initializer=_leave_interrupts_to_the_parent
        ) as pool,
    ):
        progress = manager.Queue()
        futures = [
            pool.submit(_run_one, request, algo, run_dir, progress) for algo in request.algorithms
        ]
        try:
            while not all(f.done() for f in futures):
                try:
                    item = progress.get(timeout=0.2)
                except queue_module.Empty:
                    continue
                if on_progress:
                    on_progress(*item)
        except (KeyboardInterrupt, Terminated):  # stop every algorithm now, not at its horizon
            pool.shutdown(wait=False, cancel_futures=True)
            for child in set(mp.active_children()) - others:  # the workers, the manager's server
                child.terminate()
            raise
        return [future.result() for future in futures]  # a child's error is raised here


def _leave_interrupts_to_the_parent() -> None:
    """A pool worker ignores Ctrl-C (the whole terminal's process group gets it): the parent
    stops the comparison and terminates its workers (SIGTERM, which a worker does not catch); a
    worker that raised itself would only fail its algorithm and go on to the next one."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
