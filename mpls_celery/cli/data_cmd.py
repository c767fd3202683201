"""`mpls data list` / `mpls data fetch NAME…`: which built-in datasets a run finds under the data
folder (MPLS_DATA_DIR), and downloading the official files there — the only command that
downloads anything."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mpls_celery.catalog import DATASET_NAMES
from mpls_celery.cli.output import console, print_json
from mpls_celery.settings import load_settings

app = typer.Typer(help="Find and fetch the built-in datasets.", no_args_is_help=True)

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="The data folder (default: MPLS_DATA_DIR, as a run uses)."),
]


@app.command("list")
def list_datasets(
    data_dir: DataDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the list as JSON.")] = False,
) -> None:
    """Each built-in dataset: found or not, where, and what a run trains and tests on."""
    from mpls_celery.data.local_files import find_builtin

    folder = data_dir or load_settings().data_dir
    found = [find_builtin(name, folder) for name in DATASET_NAMES]
    if as_json:
        rows = [{"name": f.name, "present": f.present, "holds": f.holds or None,
                 "where": f.where and str(f.where), "complete": f.complete,
                 "looked_in": [str(p) for p in f.looked_in]} for f in found]  # fmt: skip
        print_json({"data_dir": str(folder), "datasets": rows})
        return
    table = Table(title=f"datasets under {folder}")
    for column in ("dataset", "found in", "a run trains / tests on"):
        table.add_column(column, overflow="fold")
    for f in found:
        if f.present:
            table.add_row(f.name, _under(f.where, folder) if f.where else "(built in)", f.holds)
        else:
            looked = ", ".join(_under(p, folder) for p in f.looked_in)
            table.add_row(f.name, f"[red]not found[/] (looked in {looked})", "—")
    console.print(table)
    if not all(f.present for f in found):
        console.print("a missing one: mpls data fetch NAME, or MPLS_DATA_DIR=where it is")


def _under(path: Path, folder: Path) -> str:
    """A path as ./… when it lies under the data folder the table is titled with."""
    try:
        return f"./{path.relative_to(folder)}".removesuffix("/.")
    except ValueError:
        return str(path)


@app.command("fetch")
def fetch(
    names: Annotated[list[str], typer.Argument(help="mnist, cifar10 and/or cifar100.")],
    data_dir: DataDir = None,
) -> None:
    """Download datasets' official files into the data folder (checked against their
    checksums); one already there is left as it is."""
    from mpls_celery.data.local_files import check_fetchable, fetch_builtin

    check_fetchable(names)
    folder = data_dir or load_settings().data_dir
    for name in names:
        console.print(f"{name}: fetching into {folder} …")
        found = fetch_builtin(name, folder)
        console.print(f"{name}: {found.holds} in {found.where}")
