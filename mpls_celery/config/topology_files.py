"""Build the run's topology from its config (kinds ring/random/full/file/edges)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from mpls_celery.config.run_config import TopologyConfig
from mpls_celery.config.yaml_io import read_mapping, validate
from mpls_celery.core.errors import CoreValueError
from mpls_celery.core.topology import (
    Topology,
    from_adjacency,
    from_edges,
    full,
    random_graph,
    ring,
)
from mpls_celery.errors import ConfigError


class TopologyFile(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    workers: int | None = None
    edges: list[tuple[int, int]] | None = None
    adjacency: list[list[int]] | None = None


def build_topology(cfg: TopologyConfig, workers: int, seed: int) -> Topology:
    if cfg.kind == "ring":
        return ring(workers)
    if cfg.kind == "full":
        return full(workers)
    if cfg.kind == "random":
        return random_graph(workers, cfg.p, seed)
    if cfg.kind == "edges":
        return from_edges(workers, cfg.edges or [])
    assert cfg.path is not None
    return load_topology_file(cfg.path, workers)


def load_topology_file(path: Path, workers: int) -> Topology:
    spec = validate(TopologyFile, read_mapping(path), str(path))
    try:
        if spec.adjacency is not None:
            topo = from_adjacency(spec.adjacency)
        elif spec.edges is not None:
            topo = from_edges(spec.workers or workers, spec.edges)
        else:
            raise ConfigError(f"{path}: needs 'edges' or 'adjacency'")
    except CoreValueError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if topo.size != workers:
        raise ConfigError(f"{path}: topology has {topo.size} workers, the run has {workers}")
    return topo
