"""`mpls repro PRESET`: one of the paper's experiments in the simulator, with a report that puts
the paper's numbers beside ours."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from mpls_celery.cli.output import console, print_json
from mpls_celery.config.durations import parse_duration
from mpls_celery.errors import ConfigError
from mpls_celery.repro.presets import PRESETS
from mpls_celery.settings import load_settings


def repro(
    preset: Annotated[str, typer.Argument(help=f"One of: {', '.join(PRESETS)}.")],
    seed: Annotated[int, typer.Option(help="Seed for data, topology, profile, strategies.")] = 1,
    jobs: Annotated[int, typer.Option(min=1, help="Algorithms run in parallel processes.")] = 2,
    eval_every: Annotated[
        float, typer.Option(min=0.05, help="Virtual seconds between evaluations.")
    ] = 1.0,
    until: Annotated[
        str | None, typer.Option(help="Override the preset's horizon: 300s, 10m.")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Datasets root (default: MPLS_DATA_DIR).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Parent folder of the run directories.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
) -> None:
    """Run a paper experiment (stops each algorithm at the target) and report paper vs ours."""
    from mpls_celery.repro.run import ReproRequest, check_data, run_preset

    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}")
    chosen = PRESETS[preset]
    settings = load_settings()
    request = ReproRequest(
        chosen,
        seed=seed,
        jobs=jobs,
        eval_every=eval_every,
        data_dir=data_dir or settings.data_dir,
        runs_dir=out or settings.runs_dir,
        until=parse_duration(until) if until else None,
    )
    check_data(request)
    if not as_json:
        console.print(f"{chosen.name}: {chosen.summary}")
    with Progress(
        TextColumn("{task.description:>10}"), BarColumn(), TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(), console=console, disable=as_json, transient=True,
    ) as bars:  # fmt: skip
        tasks: dict[str, TaskID] = {}

        def on_progress(name: str, t: float, epoch: int) -> None:
            if name not in tasks:
                tasks[name] = bars.add_task(name, total=None, status="")
            bars.update(tasks[name], status=f"t={t:7.1f}s T={epoch}")

        result = run_preset(request, on_progress)
    if as_json:
        print_json({k: v for k, v in result.items() if k != "table"})
        return
    console.print((Path(result["report"]) / "paper.md").read_text())
    console.print(f"report, plots and tables in {result['report']}")
