"""`mpls credentials RUN --nodes 0-2 -o host-b.json`: the part of a --secure run's credentials
that one host needs (its own workers and Celery's user), to copy there as MPLS_CREDENTIALS_FILE."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer

from mpls_celery.cli.identifiers import check_run_id
from mpls_celery.cli.worker_cmd import parse_nodes
from mpls_celery.errors import ConfigError
from mpls_celery.runtime.backend.acl import credentials_path, load_credentials
from mpls_celery.settings import load_settings


def credentials(
    run: Annotated[str, typer.Argument(help="Run id of a running `mpls up --secure`.")],
    nodes: Annotated[str, typer.Option(help="The host's workers, e.g. 0-2,5.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (mode 0600), not stdout.")
    ] = None,
) -> None:
    """Print or write the credentials one host of a secure run may hold."""
    path = credentials_path(load_settings(), check_run_id(run))
    if not path.exists():
        raise ConfigError(f"no credentials for run {run} at {path} (is it a running --secure run?)")
    part = load_credentials(path).only(parse_nodes(nodes))
    if output is not None:
        part.save(output)
        typer.echo(f"wrote {output} (workers {sorted(part.workers)})")
    else:
        typer.echo(orjson.dumps(part.document(), option=orjson.OPT_INDENT_2).decode())
