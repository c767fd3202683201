"""`mpls report RUN_DIR...`: plots and a time-to-target / speedup table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mpls_celery.cli.identifiers import check_run_dir
from mpls_celery.cli.output import console, print_json


def report(
    run_dirs: Annotated[
        list[Path], typer.Argument(help="Run directories (from mpls sim / mpls up).")
    ],
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default: RUN_DIR/report).")
    ] = None,
    worker: Annotated[int, typer.Option(help="Worker whose peer × layer heatmap to draw.")] = 0,
    target_acc: Annotated[
        float | None, typer.Option(help="Override the run's target accuracy.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the table as JSON.")] = False,
) -> None:
    """Write PNG plots, report.md and report.json."""
    from mpls_celery.report.build import build_report

    for run_dir in run_dirs:
        check_run_dir(run_dir)
    folder = out or run_dirs[0] / "report"
    table = build_report(run_dirs, folder, worker=worker, target_acc=target_acc)
    if as_json:
        print_json(table)
        return
    console.print((folder / "report.md").read_text())
    console.print(f"plots and tables in {folder}")
