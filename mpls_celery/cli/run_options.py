"""Flags shared by `mpls sim` and `mpls up`: a run config file (or a seed-style directory) and
per-field overrides, validated into one RunConfig."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

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
Phase2Opt = Annotated[
    bool | None,
    typer.Option("--phase2-fill/--no-phase2-fill", help="MPLS Algorithm 1 phase 2 (default on)."),
]
DataDirOpt = Annotated[Path | None, typer.Option(help="Datasets root (default: MPLS_DATA_DIR).")]


def topology_overrides(topology: str | None, p: float | None) -> dict[str, object]:
    if topology is None:
        return {"topology.p": p}
    if topology in ("ring", "random", "full"):
        return {"topology.kind": topology, "topology.p": p}
    return {"topology.kind": "file", "topology.path": topology, "topology.p": p}


@dataclass(frozen=True)
class RunFlags:
    """The run-config flags `mpls sim` and `mpls up` share, as given (None = not given); each
    field's annotation is also its Typer option."""

    config: ConfigOpt = None
    workers: WorkersOpt = None
    model: ModelOpt = None
    dataset: DatasetOpt = None
    topology: TopologyOpt = None
    p: ProbOpt = None
    partition: PartitionOpt = None
    chi: ChiOpt = None
    alpha: AlphaOpt = None
    seed: SeedOpt = None
    lr: LrOpt = None
    batch_size: BatchOpt = None
    local_steps: StepsOpt = None
    tau1: Tau1Opt = None
    tau2: Tau2Opt = None
    wire_dtype: WireOpt = None
    data_dir: DataDirOpt = None
    mixing: MixingOpt = None
    pull_sees: PullSeesOpt = None
    progress_window: WindowOpt = None
    links: LinksOpt = None
    phase2_fill: Phase2Opt = None

    def to_config(self, defaults: dict[str, object], **extra: object) -> RunConfig:
        """--config (or the built-in defaults), then every flag given. `defaults` are the
        command's own defaults, used only without --config; `extra` are command-specific
        fields in RunConfig's dotted keys ('network.profile')."""
        overrides = {
            "workers": self.workers,
            "model": self.model,
            "dataset": self.dataset,
            "seed": self.seed,
            "tau1": self.tau1,
            "tau2": self.tau2,
            "wire_dtype": self.wire_dtype,
            "mixing": self.mixing,
            "pull_sees": self.pull_sees,
            "progress_window": self.progress_window,
            "links": self.links,
            "phase2_fill": self.phase2_fill,
            "data_dir": str(self.data_dir) if self.data_dir else None,
            "partition.kind": self.partition,
            "partition.chi": self.chi,
            "partition.alpha": self.alpha,
            "training.lr": self.lr,
            "training.batch_size": self.batch_size,
            "training.local_steps": self.local_steps,
            **topology_overrides(self.topology, self.p),
            **extra,
        }
        if self.config is None:
            for key, value in defaults.items():
                if overrides.get(key) is None:
                    overrides[key] = value
        base = load_run_config(self.config) if self.config else RunConfig()
        return base.with_overrides(**overrides)


def with_run_flags(command: Callable[..., None]) -> Callable[..., None]:
    """Declare the shared flags once: the Typer command gets them (after its own options) and
    its function receives them as one `flags: RunFlags` argument."""
    signature = inspect.signature(command, eval_str=True)
    own = [p for p in signature.parameters.values() if p.name != "flags"]
    hints = typing.get_type_hints(RunFlags, include_extras=True)
    shared = [
        inspect.Parameter(
            f.name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=hints[f.name]
        )
        for f in dataclasses.fields(RunFlags)
    ]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> None:
        flags = RunFlags(**{p.name: kwargs.pop(p.name) for p in shared})
        command(flags=flags, **kwargs)

    params = [*own, *shared]
    wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper
