"""One YAML file describes a run; every CLI flag overrides one field of it. Validated up front with
messages that name the field and the allowed values."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mpls_celery.catalog import (
    DATASET_NAMES,
    IMPORT_PATH,
    MODEL_NAMES,
    OWN_ALGORITHM,
    STRATEGY_NAMES,
)
from mpls_celery.config.yaml_io import validate
from mpls_celery.core.semantics import LinkModel, Mixing, ProgressWindow, PullSees, Semantics
from mpls_celery.devices import check_device


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _one_of(value: str, choices: tuple[str, ...], what: str, other: str = "") -> str:
    if value not in choices:
        extra = f", or {other}" if other else ""
        raise ValueError(f"unknown {what} {value!r}; choose one of: {', '.join(choices)}{extra}")
    return value


class PartitionConfig(_Strict):
    kind: Literal["iid", "noniid", "dirichlet"] = "iid"
    chi: float = Field(0.5, ge=0, le=1, description="non-IID level χ (kind=noniid)")
    alpha: float = Field(0.5, gt=0, description="Dirichlet concentration (kind=dirichlet)")


class TopologyConfig(_Strict):
    kind: Literal["ring", "random", "full", "file", "edges"] = "random"
    p: float = Field(0.5, gt=0, le=1, description="edge probability (kind=random)")
    path: Path | None = Field(None, description="edge list / adjacency YAML (kind=file)")
    edges: list[tuple[int, int]] | None = Field(None, description="inline edges (kind=edges)")

    @model_validator(mode="after")
    def _needs_source(self) -> TopologyConfig:
        if self.kind == "file" and self.path is None:
            raise ValueError("kind 'file' needs a path")
        if self.kind == "edges" and self.edges is None:
            raise ValueError("kind 'edges' needs edges")
        return self


class TrainingConfig(_Strict):
    batch_size: int = Field(64, ge=1)
    lr: float = Field(0.01, gt=0)
    local_steps: int = Field(1, ge=1, description="SGD steps per local iteration")
    momentum: float = Field(
        0.0, ge=0, lt=1, description="SGD momentum; each worker's buffer is its own, never averaged"
    )
    weight_decay: float = Field(0.0, ge=0, description="L2 penalty λ, as torch.optim.SGD's")
    lr_decay: float = Field(
        1.0, gt=0, le=1, description="lr × this every lr_decay_every local iterations (step decay)"
    )
    lr_decay_every: int | None = Field(
        None, ge=1, description="local iterations between decays (none: a constant rate)"
    )
    iterations: int | None = Field(30, ge=1, description="local iterations per worker")
    eval_every: int = Field(
        10, ge=1, description="a runtime worker evaluates itself every N iterations, at most 1/s"
    )


class DataFiles(_Strict):
    """The user's own data in files (`dataset: {kind: npz, path: FILE}`; on the command line
    `--dataset npz:FILE` or `--dataset imagefolder:DIR`)."""

    kind: Literal["npz", "imagefolder"]
    path: Path = Field(description="an .npz with x_train, y_train, x_test, y_test; or a folder")
    test_fraction: float = Field(
        0.2, gt=0, lt=1, description="imagefolder without train/ and test/: the seeded test share"
    )
    image_size: int | None = Field(
        None, ge=1, description="imagefolder: the square side images are resized to"
    )

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.path.name}"


def data_label(value: object) -> str:
    """A dataset as a table shows it, from its config or the config's JSON form."""
    if isinstance(value, DataFiles):
        return value.label
    if isinstance(value, dict):
        return f"{value.get('kind', '?')}:{Path(str(value.get('path', '?'))).name}"
    return str(value)


class NetworkConfig(_Strict):
    profile: str = Field("none", description="none | uniform | random | paper30 | path.yaml")
    step_seconds: float | None = Field(
        None, gt=0, description="compute time of one SGD step at speed 1.0 (None = measured)"
    )


TAUS = ("tau1", "tau2")


def _one_tau(values: dict[str, Any]) -> str | None:
    """The tau given, where exactly one is."""
    given = [name for name in TAUS if values.get(name) is not None]
    return given[0] if len(given) == 1 else None


def _other_tau(name: str) -> str:
    return TAUS[1] if name == TAUS[0] else TAUS[0]


class RunConfig(_Strict):
    workers: int = Field(6, ge=1)
    algorithm: str = "mpls"
    tau1: float = Field(0.5, ge=0, le=1)
    tau2: float = Field(0.5, ge=0, le=1)
    phase2_fill: bool = Field(True, description="MPLS Algorithm 1 phase 2 (extra copies)")
    model: str = Field("lenet5", description="a built-in name, or package.module:factory")
    dataset: str | DataFiles = Field(
        "digits",
        description="a built-in name, package.module:loader, or data files (npz / imagefolder)",
    )
    data_dir: Path | None = None
    partition: PartitionConfig = PartitionConfig()
    topology: TopologyConfig = TopologyConfig()
    training: TrainingConfig = TrainingConfig()
    network: NetworkConfig = NetworkConfig()
    compute_speed: list[float] | None = Field(None, description="per-worker override")
    wire_dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    compression: Literal["lz4", "none"] = Field("lz4", description="snapshot payload codec")
    device: str = Field(
        "auto", description="auto | cpu | cuda | cuda:N | mps: where models train and evaluate"
    )
    seed: int = Field(1, ge=0)
    # docs/algorithm.md, "Iteration semantics": what one iteration means, for every algorithm
    mixing: Mixing = Field(
        Semantics.mixing,
        description="average-then-step | train-then-average (Step 9, as first written)",
    )
    pull_sees: PullSees = Field(
        Semantics.pull_sees, description="published | trained: the peer model a pull reads"
    )
    progress_window: ProgressWindow = Field(
        Semantics.progress_window, description="since-last-pull | version: Eq. 5's window"
    )
    links: LinkModel = Field(
        Semantics.links, description="independent | shared: concurrent pulls share the inbound rate"
    )

    @model_validator(mode="before")
    @classmethod
    def _complement_tau(cls, data: object) -> object:
        """τ1 + τ2 = 1 (peer selection's two weights): giving one sets the other."""
        if not isinstance(data, dict) or (given := _one_tau(data)) is None:
            return data  # none or both given
        value = data[given]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            return data  # the field's own check names what is wrong with it
        return {**data, _other_tau(given): round(1.0 - value, 12)}

    @field_validator("algorithm")
    @classmethod
    def _algorithm(cls, value: str) -> str:
        if IMPORT_PATH.fullmatch(value):
            return value
        return _one_of(value, STRATEGY_NAMES, "algorithm", OWN_ALGORITHM)

    @field_validator("model")
    @classmethod
    def _model(cls, value: str) -> str:
        if IMPORT_PATH.fullmatch(value):
            return value
        return _one_of(value, MODEL_NAMES, "model", "an import path package.module:factory")

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        return check_device(value)

    @field_validator("dataset", mode="before")
    @classmethod
    def _dataset(cls, value: object) -> object:
        """`npz:FILE` and `imagefolder:DIR` are short for the mapping form. A mapping is data
        files, anything else a name: one error for the form meant, not one per form."""
        if isinstance(value, DataFiles):
            return value
        if isinstance(value, dict):
            return DataFiles.model_validate(value)
        if not isinstance(value, str):
            raise ValueError(
                "a dataset is a name (digits, mnist, …, package.module:loader, npz:FILE, "
                "imagefolder:DIR) or a mapping {kind: npz | imagefolder, path: …}"
            )
        kind, _, path = value.partition(":")
        if kind in ("npz", "imagefolder") and path:
            return DataFiles.model_validate({"kind": kind, "path": path})
        if IMPORT_PATH.fullmatch(value):
            return value
        return _one_of(
            value, DATASET_NAMES, "dataset",
            "package.module:loader, npz:FILE or imagefolder:DIR",
        )  # fmt: skip

    @model_validator(mode="after")
    def _consistent(self) -> RunConfig:
        if abs(self.tau1 + self.tau2 - 1.0) > 1e-9:
            raise ValueError(f"tau1 + tau2 must equal 1 (got {self.tau1} + {self.tau2})")
        if self.compute_speed is not None and len(self.compute_speed) != self.workers:
            raise ValueError(
                f"compute_speed has {len(self.compute_speed)} entries for {self.workers} workers"
            )
        if self.topology.edges is not None:
            bad = [e for e in self.topology.edges if not all(0 <= v < self.workers for v in e)]
            if bad:
                raise ValueError(
                    f"topology edge {bad[0]} names a worker outside 0..{self.workers - 1}"
                )
        return self

    @property
    def dataset_label(self) -> str:
        return data_label(self.dataset)

    def with_paths_from(self, folder: Path) -> RunConfig:
        """Relative data-file paths resolved against `folder` (the run file's own)."""
        if isinstance(self.dataset, DataFiles) and not self.dataset.path.is_absolute():
            files = self.dataset.model_copy(update={"path": (folder / self.dataset.path).resolve()})
            return self.model_copy(update={"dataset": files})
        return self

    @property
    def semantics(self) -> Semantics:
        return Semantics(self.mixing, self.pull_sees, self.progress_window, self.links)

    def with_overrides(self, **changes: Any) -> RunConfig:
        """Apply CLI flags (None = not given); nested keys use dots: {'training.lr': 0.1}."""
        data = self.model_dump(mode="json")
        for key, value in changes.items():
            if value is None:
                continue
            target = data
            *parents, leaf = key.split(".")
            for part in parents:
                target = target[part]
            target[leaf] = value
        given = _one_tau(changes)
        if given:  # the one given sets the other (_complement_tau)
            data.pop(_other_tau(given))
        return validate(RunConfig, data, "options")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json", exclude_none=True), sort_keys=False)
