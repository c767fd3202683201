"""Flags shared by `mpls sim` and `mpls up`: a run config file (or a seed-style directory) and
per-field overrides, validated into one RunConfig."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mpls_celery.config.load import load_run_config
from mpls_celery.config.run_config import RunConfig

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="Run YAML file, or a per-worker config directory.")
]
WorkersOpt = Annotated[int | None, typer.Option("--workers", "-n", help="Number of workers N.")]
AlgoOpt = Annotated[
    str | None,
    typer.Option("--algo", help="mpls, mpls-peer, mpls-layer, rand-mpls, appg, netmax, ad-psgd"),
]
ModelOpt = Annotated[str | None, typer.Option(help="lenet5 | nin | resnet18 | mlp")]
DatasetOpt = Annotated[
    str | None, typer.Option(help="digits | mnist | cifar10 | cifar100 | synthetic")
]
TopologyOpt = Annotated[
    str | None, typer.Option(help="ring | random | full, or a topology YAML file")
]
ProbOpt = Annotated[
    float | None, typer.Option("--p", help="Edge probability of the random topology.")
]
PartitionOpt = Annotated[str | None, typer.Option(help="iid | noniid | dirichlet")]
ChiOpt = Annotated[float | None, typer.Option(help="Non-IID level χ for --partition noniid.")]
AlphaOpt = Annotated[float | None, typer.Option(help="Dirichlet α for --partition dirichlet.")]
SeedOpt = Annotated[
    int | None, typer.Option(help="Seed for data, topology, profile and strategies.")
]
LrOpt = Annotated[float | None, typer.Option(help="SGD learning rate.")]
BatchOpt = Annotated[int | None, typer.Option(help="SGD batch size.")]
StepsOpt = Annotated[int | None, typer.Option(help="SGD steps per local iteration.")]
Tau1Opt = Annotated[float | None, typer.Option(help="Weight of link speed in peer selection.")]
Tau2Opt = Annotated[float | None, typer.Option(help="Weight of data divergence in peer selection.")]
WireOpt = Annotated[str | None, typer.Option(help="float32 | float16 | bfloat16 on the wire.")]
MixingOpt = Annotated[
    str | None,
    typer.Option(help="average-then-step | train-then-average (spec 'Iteration semantics')."),
]
PullSeesOpt = Annotated[
    str | None, typer.Option(help="published | trained: which peer model a pull reads.")
]
WindowOpt = Annotated[
    str | None, typer.Option(help="since-last-pull | version: the window of Eq. 5's progress g.")
]
LinksOpt = Annotated[
    str | None, typer.Option(help="independent | shared: concurrent pulls share the inbound rate.")
]
DataDirOpt = Annotated[Path | None, typer.Option(help="Datasets root (default: MPLS_DATA_DIR).")]


def topology_overrides(topology: str | None, p: float | None) -> dict[str, object]:
    if topology is None:
        return {"topology.p": p}
    if topology in ("ring", "random", "full"):
        return {"topology.kind": topology, "topology.p": p}
    return {"topology.kind": "file", "topology.path": topology, "topology.p": p}


def build_run_config(config: Path | None, **overrides: object) -> RunConfig:
    base = load_run_config(config) if config else RunConfig()
    return base.with_overrides(**overrides)


def config_from_flags(
    config: Path | None,
    defaults: dict[str, object],
    *,
    topology: str | None,
    p: float | None,
    data_dir: Path | None,
    profile: str | None,
    partition: str | None,
    chi: float | None,
    alpha: float | None,
    lr: float | None,
    batch_size: int | None,
    local_steps: int | None,
    **flags: object,
) -> RunConfig:
    """The run config of a command: --config (or the built-in defaults), then every flag given.
    `defaults` are the command's own defaults, used only without --config; flag names use
    RunConfig's dotted keys ('training.lr')."""
    overrides = {
        **flags,
        "data_dir": str(data_dir) if data_dir else None,
        "network.profile": profile,
        "partition.kind": partition,
        "partition.chi": chi,
        "partition.alpha": alpha,
        "training.lr": lr,
        "training.batch_size": batch_size,
        "training.local_steps": local_steps,
        **topology_overrides(topology, p),
    }
    if config is None:
        for key, value in defaults.items():
            if overrides.get(key) is None:
                overrides[key] = value
    return build_run_config(config, **overrides)
