"""Printing helpers shared by commands: JSON for machines, rich tables for people."""

from __future__ import annotations

from typing import Any

import orjson
import typer
from rich.console import Console

console = Console(highlight=False)


def print_json(data: Any) -> None:
    typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY).decode())
