"""`mpls config generate` (per-worker YAML files, as the earlier implementation's
generate_configs.py wrote them) and `mpls config show` (validate and print a run config)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mpls_celery.cli.output import console, print_json
from mpls_celery.config.load import load_run_config
from mpls_celery.config.run_config import RunConfig
from mpls_celery.config.seed_dirs import write_seed_dir
from mpls_celery.config.topology_files import build_topology
from mpls_celery.errors import ConfigError

app = typer.Typer(help="Create and check run configs.", no_args_is_help=True)

_TOPOLOGY_ALIASES = {"ring": "ring", "random": "random", "fully_connected": "full", "full": "full"}


@app.command("generate")
def generate(
    num_workers: Annotated[int, typer.Option("--num-workers", min=1, help="Workers N.")],
    output_dir: Annotated[Path, typer.Option("--output-dir", help="Where to write worker_*.yaml.")],
    topology: Annotated[str, typer.Option(help="ring | random | fully_connected")] = "ring",
    random_prob: Annotated[float, typer.Option("--random-prob", help="Edge probability.")] = 0.5,
    dataset: Annotated[str, typer.Option(help="Dataset name.")] = "mnist",
    non_iid_level: Annotated[float, typer.Option(help="χ; 0 = IID.")] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed for the random topology.")] = 1,
) -> None:
    """Write one YAML file per worker (worker_id, peers, data, training, mpls, system)."""
    kind = _TOPOLOGY_ALIASES.get(topology)
    if kind is None:
        raise ConfigError(
            f"unknown topology {topology!r}; choose one of: ring, random, fully_connected"
        )
    cfg = RunConfig().with_overrides(
        workers=num_workers,
        dataset=dataset,
        seed=seed,
        **{
            "topology.kind": kind,
            "topology.p": random_prob,
            "partition.kind": "noniid" if non_iid_level > 0 else "iid",
            "partition.chi": non_iid_level if non_iid_level > 0 else None,
        },
    )
    topo = build_topology(cfg.topology, cfg.workers, cfg.seed)
    written = write_seed_dir(cfg, topo, output_dir)
    console.print(f"wrote {len(written)} worker configs to {output_dir}")


@app.command("show")
def show(
    path: Annotated[Path, typer.Argument(help="A run YAML file or a per-worker config directory.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Validate a run config and print it in the single-file form."""
    cfg = load_run_config(path)
    if as_json:
        print_json(cfg.model_dump(mode="json"))
    else:
        typer.echo(cfg.to_yaml(), nl=False)
