"""Flags shared by `mpls sim` and `mpls up`: a run config file (or a seed-style directory) and
per-field overrides, validated into one RunConfig."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from mpls_celery.config.load import load_run_config
from mpls_celery.config.run_config import RunConfig

AlgoOpt = Annotated[
    str | None,
    typer.Option("--algo", help="mpls, mpls-peer, mpls-layer, rand-mpls, appg, netmax, ad-psgd"),
]


def topology_overrides(topology: str | None, p: float | None) -> dict[str, object]:
    if topology is None:
        return {"topology.p": p}
    if topology in ("ring", "random", "full"):
        return {"topology.kind": topology, "topology.p": p}
    return {"topology.kind": "file", "topology.path": topology, "topology.p": p}


def to(key: str) -> Any:
    """A flag whose value is the RunConfig field `key` (dotted for nested ones)."""
    return field(default=None, metadata={"config": key})


@dataclass(frozen=True)
class RunFlags:
    """The run-config flags `mpls sim` and `mpls up` share, as given (None = not given). Each is
    declared once: its annotation is its Typer option, `to(...)` the config field it sets."""

    config: Annotated[
        Path | None,
        typer.Option("--config", help="Run YAML file, or a per-worker config directory."),
    ] = None
    imports: Annotated[
        list[Path] | None,
        typer.Option(
            "--import",
            help="A folder to import your model or data code from (repeatable); the run file's "
            "folder and the current one are searched anyway.",
        ),
    ] = None
    workers: Annotated[int | None, typer.Option("--workers", "-n", help="Number of workers N.")] = (
        to("workers")
    )
    model: Annotated[str | None, typer.Option(help="lenet5 | nin | resnet18 | mlp")] = to("model")
    dataset: Annotated[
        str | None, typer.Option(help="digits | mnist | cifar10 | cifar100 | synthetic")
    ] = to("dataset")
    topology: Annotated[
        str | None, typer.Option(help="ring | random | full, or a topology YAML file")
    ] = None  # → topology.kind / topology.path (topology_overrides)
    p: Annotated[
        float | None, typer.Option("--p", help="Edge probability of the random topology.")
    ] = None  # → topology.p
    partition: Annotated[str | None, typer.Option(help="iid | noniid | dirichlet")] = to(
        "partition.kind"
    )
    chi: Annotated[float | None, typer.Option(help="Non-IID level χ for --partition noniid.")] = to(
        "partition.chi"
    )
    alpha: Annotated[float | None, typer.Option(help="Dirichlet α for --partition dirichlet.")] = (
        to("partition.alpha")
    )
    seed: Annotated[
        int | None, typer.Option(help="Seed for data, topology, profile and strategies.")
    ] = to("seed")
    lr: Annotated[float | None, typer.Option(help="SGD learning rate.")] = to("training.lr")
    batch_size: Annotated[int | None, typer.Option(help="SGD batch size.")] = to(
        "training.batch_size"
    )
    local_steps: Annotated[int | None, typer.Option(help="SGD steps per local iteration.")] = to(
        "training.local_steps"
    )
    momentum: Annotated[
        float | None,
        typer.Option(help="SGD momentum (each worker's buffer is its own; default 0)."),
    ] = to("training.momentum")
    weight_decay: Annotated[
        float | None, typer.Option(help="SGD weight decay, an L2 penalty (default 0).")
    ] = to("training.weight_decay")
    lr_decay: Annotated[
        float | None,
        typer.Option(help="Multiply the learning rate by this every --lr-decay-every iterations."),
    ] = to("training.lr_decay")
    lr_decay_every: Annotated[
        int | None,
        typer.Option(help="Local iterations between learning-rate decays (default: none)."),
    ] = to("training.lr_decay_every")
    tau1: Annotated[
        float | None,
        typer.Option(help="Weight of link speed in peer selection (τ2 = 1 − τ1 unless given)."),
    ] = to("tau1")
    tau2: Annotated[
        float | None,
        typer.Option(
            help="Weight of data divergence in peer selection (τ1 = 1 − τ2 unless given)."
        ),
    ] = to("tau2")
    wire_dtype: Annotated[
        str | None, typer.Option(help="float32 | float16 | bfloat16 on the wire.")
    ] = to("wire_dtype")
    device: Annotated[
        str | None, typer.Option(help="auto | cpu | cuda | cuda:N | mps (default: auto).")
    ] = to("device")
    data_dir: Annotated[
        Path | None, typer.Option(help="Datasets root (default: MPLS_DATA_DIR).")
    ] = to("data_dir")
    mixing: Annotated[
        str | None,
        typer.Option(help="average-then-step | train-then-average (docs/algorithm.md)."),
    ] = to("mixing")
    pull_sees: Annotated[
        str | None, typer.Option(help="published | trained: which peer model a pull reads.")
    ] = to("pull_sees")
    progress_window: Annotated[
        str | None, typer.Option(help="since-last-pull | version: the window of Eq. 5's g.")
    ] = to("progress_window")
    links: Annotated[
        str | None,
        typer.Option(help="independent | shared: concurrent pulls share the inbound rate."),
    ] = to("links")
    phase2_fill: Annotated[
        bool | None,
        typer.Option(
            "--phase2-fill/--no-phase2-fill", help="MPLS Algorithm 1 phase 2 (default on)."
        ),
    ] = to("phase2_fill")

    def given(self) -> list[str]:
        """The flags given on the command line, as typed (`--workers`)."""
        return [
            "--" + f.name.replace("_", "-")
            for f in dataclasses.fields(self)
            if getattr(self, f.name) is not None and f.name != "imports"
        ]

    def to_config(self, defaults: dict[str, object], **extra: object) -> RunConfig:
        """--config (or the built-in defaults), then every flag given. `defaults` are the
        command's own defaults, used only without --config; `extra` are command-specific
        fields in RunConfig's dotted keys ('network.profile')."""
        overrides: dict[str, object] = {
            f.metadata["config"]: _plain(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if "config" in f.metadata
        }
        overrides |= topology_overrides(self.topology, self.p) | extra
        if self.config is None:
            for key, value in defaults.items():
                if overrides.get(key) is None:
                    overrides[key] = value
        from mpls_celery.plugins import add_import_dirs  # torch: only when a run is built

        add_import_dirs(self.import_dirs())
        base = load_run_config(self.config) if self.config else RunConfig()
        return base.with_overrides(**overrides)

    def import_dirs(self) -> list[Path]:
        """Where the user's model and data code is imported from: the current folder, the run
        file's, and every --import."""
        from mpls_celery.plugins import given_import_dirs  # torch: only when a run is built

        folders = [Path.cwd()]
        if self.config is not None:
            folders.append(self.config.parent if self.config.suffix else self.config)
        return [*folders, *given_import_dirs(self.imports)]


def _plain(value: object) -> object:
    """A flag's value as the config's JSON form takes it."""
    return str(value) if isinstance(value, Path) else value


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
