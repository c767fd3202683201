"""Printing helpers shared by commands: JSON for machines, rich tables for people."""

from __future__ import annotations

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


def models_line(summary: dict[str, Any]) -> str:
    """Where the run's averaged models are, if it left any (none: every algorithm diverged, or
    no worker had a readable model)."""
    models = list((summary.get("models") or {}).values())
    return f"  (model: {', '.join(models)})" if models else ""
