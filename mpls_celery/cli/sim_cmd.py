"""`mpls sim`: the algorithms side by side in virtual time."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mpls_celery.catalog import checked_algorithms
from mpls_celery.cli import run_options as ro
from mpls_celery.cli.output import console, percent, print_json, print_where
from mpls_celery.config.durations import parse_duration
from mpls_celery.errors import MplsError
from mpls_celery.settings import Settings, load_settings
from mpls_celery.sim.engine_choice import check_engine
from mpls_celery.telemetry.rundir import SUMMARY, read_json

if TYPE_CHECKING:
    from mpls_celery.sim.runner import SimRequest

DEFAULT_ALGORITHMS = "mpls,appg,netmax,rand-mpls"
REPLAY_HEADROOM = 1.5


@ro.with_run_flags
def sim(
    flags: ro.RunFlags,
    algo: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated algorithms to compare (default: mpls,appg,netmax,rand-mpls; "
            "with --replay: the recorded run's)."
        ),
    ] = None,
    profile: Annotated[
        str | None, typer.Option(help="uniform | random | paper30 | profile YAML")
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(help="Virtual duration: 300s, 5m, 1h (default: 300s, unless --epochs)."),
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(min=1, help="Stop after T iterations over all workers.")
    ] = None,
    target_acc: Annotated[
        float | None, typer.Option(min=0, max=1, help="Accuracy target for time-to-target.")
    ] = None,
    stop_at_target: Annotated[
        bool, typer.Option(help="End each algorithm once it reaches the target.")
    ] = False,
    eval_every: Annotated[
        float | None,
        typer.Option(
            help="Virtual seconds between evaluations (default: the duration / 300, 0.5 to 5 s)."
        ),
    ] = None,
    eval_every_epochs: Annotated[
        int | None,
        typer.Option(min=1, help="Evaluate every E epochs instead of every --eval-every seconds."),
    ] = None,
    eval_samples: Annotated[
        int, typer.Option(min=1, help="Test samples per worker per evaluation.")
    ] = 200,
    step_seconds: Annotated[
        float | None,
        typer.Option(
            help="Seconds of one SGD step at speed 1.0 (default: the profile's, else the built-in "
            "model's measured step; a model of your own: 1e-7 s per parameter, at least 1 ms)."
        ),
    ] = None,
    replay: Annotated[
        Path | None,
        typer.Option(
            help="A run directory of `mpls up`: simulate it — its config, seed, partition and "
            "topology, its trace's link speeds and compute times instead of a profile."
        ),
    ] = None,
    jobs: Annotated[int, typer.Option(min=1, help="Algorithms run in parallel processes.")] = 2,
    engine: Annotated[
        str,
        typer.Option(
            help="auto | sequential | batched: batched trains all waiting workers in one "
            "vectorised call (pays on a GPU); auto: batched on a GPU, sequential on a CPU."
        ),
    ] = "auto",
    out: Annotated[Path | None, typer.Option(help="Parent folder of the run directory.")] = None,
    save_workers: Annotated[
        bool,
        typer.Option(help="Also save each worker's final model (models/ALGORITHM/worker-I)."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Simulate algorithms in virtual time on one machine (real SGD, modelled network)."""
    from mpls_celery.sim.runner import plan_simulation, run_simulation  # torch: on use

    settings = load_settings()
    check_engine(engine)
    if replay is not None:
        chosen = checked_algorithms(algo) if algo else None
        request = replay_request(
            replay, chosen, until, target_acc, stop_at_target, eval_every, out, settings, jobs,
            engine, save_workers,
        )  # fmt: skip
        algorithms = request.algorithms
        horizon = request.options.until
    else:
        algorithms = checked_algorithms(algo or DEFAULT_ALGORITHMS)
        cfg = flags.to_config(
            {"workers": 30, "dataset": "mnist", "network.profile": "paper30"},
            **{"network.profile": profile},
        )
        request = plan_simulation(
            cfg, algorithms, out or settings.runs_dir, settings.data_dir,
            until=parse_duration(until) if until else None, epochs=epochs, eval_every=eval_every,
            eval_every_epochs=eval_every_epochs, eval_samples=eval_samples,
            step_seconds=step_seconds, target_acc=target_acc, stop_at_target=stop_at_target,
            jobs=jobs, engine=engine, save_workers=save_workers,
        )  # fmt: skip
        horizon = request.options.until
    with Progress(
        TextColumn("{task.description:>10}"), BarColumn(), TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(), console=console, disable=as_json, transient=False,
    ) as bars:  # fmt: skip
        total = horizon or float(epochs or 1)
        tasks = {a: bars.add_task(a, total=total, status="") for a in algorithms}

        def on_progress(name: str, t: float, epoch: int) -> None:
            done = t if horizon else epoch
            bars.update(tasks[name], completed=done, status=f"t={t:7.1f}s T={epoch}")

        run_dir = run_simulation(request, on_progress)
    summary = read_json(run_dir / SUMMARY)
    if as_json:
        print_json(summary)
    else:
        print_summary(summary)
    if summary.get("failed"):  # written and shown; the exit status says it
        raise MplsError(summary["reason"])


def replay_request(
    run_dir: Path,
    algorithms: tuple[str, ...] | None,
    until: str | None,
    target_acc: float | None,
    stop_at_target: bool,
    eval_every: float | None,
    out: Path | None,
    settings: Settings,
    jobs: int,
    engine: str = "auto",
    save_workers: bool = False,
) -> SimRequest:
    """The recorded run as it was (its algorithm, config and evaluation cadence), run half as long
    again (a run that stopped at its target leaves its replay room to reach it; past the trace's
    end its last measurements hold); --algo (other algorithms on the recorded network), --until,
    --target-acc and --eval-every override."""
    from mpls_celery.sim.engine import SimOptions
    from mpls_celery.sim.limits import check_limits
    from mpls_celery.sim.recorded_run import load_recorded_run, replay_network
    from mpls_celery.sim.runner import SimRequest

    check_limits(eval_every=eval_every, target_acc=target_acc, jobs=jobs)
    recorded = load_recorded_run(run_dir)
    cfg = recorded.config
    target = target_acc if target_acc is not None else recorded.target_acc
    options = SimOptions(
        algorithm=cfg.algorithm,
        until=parse_duration(until) if until else REPLAY_HEADROOM * recorded.trace.duration,
        eval_every=eval_every or recorded.eval_interval or 5.0,
        eval_samples=recorded.eval_samples,
        target_acc=target,
        stop_at_target=stop_at_target,
        record_links=True,
        engine=engine,  # checked against the model where the simulation builds it
        save_workers=save_workers,
    )
    network = replay_network(recorded.trace, link_speeds=recorded.link_speeds)
    return SimRequest(
        cfg, algorithms or (cfg.algorithm,), options, settings.data_dir, out or settings.runs_dir,
        jobs=jobs, network=network, replay_of=str(run_dir.resolve()),
    )  # fmt: skip


def print_summary(summary: dict) -> None:  # type: ignore[type-arg]
    target = summary["target_acc"]
    title = "no target accuracy" if target is None else f"target accuracy: {percent(target)}"
    table = Table(title=title)
    table.add_column("algorithm", overflow="fold")  # an algorithm of your own's path, whole
    for heading in ("time to target (s)", "final mean acc", "final avg-model acc", "bytes pulled",
                    "iterations"):  # fmt: skip
        table.add_column(heading)
    diverged = summary.get("diverged") or {}
    for name in summary.get("order") or summary["algorithms"]:
        row = summary["algorithms"][name]
        ttt = row["time_to_target"]
        table.add_row(
            f"{name} (diverged)" if name in diverged else name,
            "—" if ttt is None else f"{ttt:.1f}",
            percent(row["final_mean_acc"]),
            percent(row["final_avg_model_acc"]),
            f"{row['bytes_pulled'] / 1e6:.1f} MB",
            str(row["iterations"]),
        )
    console.print(table)
    for a, others in summary["speedup"].items():
        parts = [f"{v:.2f}× vs {b}" for b, v in others.items() if v is not None]
        if parts:
            console.print(f"{a}: " + ", ".join(parts))
    print_where(summary)
