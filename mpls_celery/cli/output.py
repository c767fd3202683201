"""Printing helpers shared by commands: JSON for machines, rich tables for people."""

from __future__ import annotations

from typing import Any

import orjson
import typer
from rich.console import Console

# soft wrap: a long line is left to the terminal, so a path in it stays whole and copyable
console = Console(highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY).decode())


def percent(value: float | None) -> str:
    """An accuracy for a table; '—' where there is none (never a made-up 0)."""
    return "—" if value is None else f"{100 * value:.2f} %"


def print_where(summary: dict[str, Any]) -> None:
    """The run's folder, the averaged models it left (none: every algorithm diverged, or no
    worker had a readable model) and how to report on it, one per line."""
    run_dir = summary["run_dir"]
    console.print(f"run directory: {run_dir}")
    models = list((summary.get("models") or {}).values())
    if models:
        label = "trained model" if len(models) == 1 else "trained models"
        console.print(f"{label}: {', '.join(models)} (in the run directory)")
    console.print(f"plots and report: mpls report {run_dir}")
