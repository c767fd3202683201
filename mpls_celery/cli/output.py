"""Printing helpers shared by commands: JSON for machines, rich tables for people."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import typer
from rich.console import Console

console = Console(highlight=False)


def print_json(data: Any) -> None:
    typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY).decode())


def percent(value: float | None) -> str:
    """An accuracy for a table; '—' where there is none (never a made-up 0)."""
    return "—" if value is None else f"{100 * value:.2f} %"


def saved_models(run_dir: object) -> str:
    """Where the run's averaged model is, if it left one (none: every algorithm diverged, or no
    worker had a readable model)."""
    from mpls_celery.telemetry.model_files import MODELS

    folder = Path(str(run_dir)) / MODELS
    return f"  (averaged model: {MODELS}/<algorithm>.safetensors)" if folder.is_dir() else ""
