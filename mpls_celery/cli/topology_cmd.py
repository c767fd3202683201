"""`mpls topology show`: degree stats, diameter, connectedness and an adjacency picture."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mpls_celery.cli.output import console, print_json
from mpls_celery.config.run_config import TopologyConfig
from mpls_celery.config.topology_files import build_topology
from mpls_celery.config.yaml_io import validate
from mpls_celery.core.topology import Topology

app = typer.Typer(help="Inspect topologies.", no_args_is_help=True)


def adjacency_picture(topo: Topology) -> str:
    rows = []
    for i in range(topo.size):
        cells = "".join("█" if topo.adjacency[i, j] else "·" for j in range(topo.size))
        rows.append(f"{i:>3} {cells}")
    return "\n".join(rows)


@app.command("show")
def show(
    kind: Annotated[str, typer.Option(help="ring | random | full | file")] = "random",
    workers: Annotated[int, typer.Option(min=1, help="Number of workers N.")] = 30,
    p: Annotated[float, typer.Option(help="Edge probability for 'random'.")] = 0.5,
    seed: Annotated[int, typer.Option(help="Seed for 'random'.")] = 1,
    file: Annotated[Path | None, typer.Option(help="Edge list / adjacency YAML.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Build a topology and describe it."""
    cfg = validate(
        TopologyConfig, {"kind": "file" if file else kind, "p": p, "path": file}, "options"
    )
    topo = build_topology(cfg, workers, seed)
    deg, edges = topo.degree_stats(), topo.edges()
    summary = {
        "kind": cfg.kind,
        "workers": topo.size,
        "edges": len(edges),
        "degree": deg,
        "connected": topo.connected,
        "diameter": topo.diameter,
    }
    if as_json:
        print_json({**summary, "edge_list": edges})
        return
    console.print(
        f"{cfg.kind}: N={topo.size}, {len(edges)} edges, degree min/mean/max "
        f"{deg['min']}/{deg['mean']:.1f}/{deg['max']}, connected={topo.connected}, "
        f"diameter={topo.diameter}"
    )
    if topo.size <= 64:
        console.print(adjacency_picture(topo))
