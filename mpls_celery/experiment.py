"""Everything a run needs, built once from a RunConfig: data, partition, topology, profile,
the model's MPLS layers and their sizes, and the pairwise label divergence. Both engines use it.
A model or data loader given as an object (the Python API) takes the config's place."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from mpls_celery.config.profiles import load_profile
from mpls_celery.config.run_config import RunConfig
from mpls_celery.config.topology_files import build_topology
from mpls_celery.core.errors import CoreValueError
from mpls_celery.core.layering import Layer, layer_bytes
from mpls_celery.core.models import ModelFactory, build_model, in_fast_layout
from mpls_celery.core.network_profile import NetworkProfile
from mpls_celery.core.partition import Partition, partition
from mpls_celery.core.selection import label_divergence
from mpls_celery.core.step import WorkerStep
from mpls_celery.core.topology import Topology
from mpls_celery.core.training import TrainConfig
from mpls_celery.data.arrays import DatasetSplit, LabelledData
from mpls_celery.devices import resolve_device, use_device
from mpls_celery.errors import ConfigError
from mpls_celery.plugins import (
    DataLoader,
    checked_model,
    load_data,
    model_factory,
    model_label,
    strategy_for,
)

WIRE_ITEMSIZE = {"float32": 4, "float16": 2, "bfloat16": 2}


@dataclass(frozen=True)
class Experiment:
    config: RunConfig
    data: DatasetSplit
    partition: Partition
    topology: Topology
    profile: NetworkProfile | None
    layers: tuple[Layer, ...]
    layer_bytes: NDArray[np.float64]
    divergence: NDArray[np.float64]  # (N, N) DD between every pair of workers
    model_factory: ModelFactory
    model_hash: str  # of the initial weights: every worker's must match
    device: torch.device

    def new_model(self) -> nn.Module:
        """Every worker starts from the same weights (seeded by the run), on the run's device."""
        model = build_model(
            self.model_factory, self.data.input_shape, self.data.num_classes, self.config.seed
        )
        return in_fast_layout(model.to(self.device), self.model_factory, self.device)

    def local_data(self, worker: int) -> LabelledData:
        """Worker i's own training samples, on the device."""
        return self.data.train.subset(self.partition.indices[worker]).to(self.device)

    @cached_property
    def test_data(self) -> LabelledData:
        return self.data.test.to(self.device)

    @property
    def train_config(self) -> TrainConfig:
        t = self.config.training
        return TrainConfig(t.batch_size, t.lr, t.local_steps, t.momentum, t.weight_decay,
                           t.lr_decay, t.lr_decay_every)  # fmt: skip

    def worker_step(self, worker: int, algorithm: str | None = None) -> WorkerStep:
        """Worker i's iteration logic under this run's algorithm (or another, in a comparison)."""
        cfg = self.config
        strategy = strategy_for(
            algorithm or cfg.algorithm, cfg.tau1, cfg.tau2, cfg.phase2_fill, len(self.layers)
        )
        return WorkerStep(
            worker, strategy, cfg.semantics, self.layer_bytes, self.divergence[worker]
        )


def build_experiment(
    cfg: RunConfig,
    data_dir: Path,
    profile_name: str | None = None,
    model: ModelFactory | None = None,
    loader: DataLoader | None = None,
) -> Experiment:
    """The config boundary: an inconsistent input found by the core is the user's to fix."""
    try:
        return _build(cfg, data_dir, profile_name, model, loader)
    except CoreValueError as exc:
        raise ConfigError(str(exc)) from None


def _build(
    cfg: RunConfig,
    data_dir: Path,
    profile_name: str | None,
    model_object: ModelFactory | None,
    loader: DataLoader | None,
) -> Experiment:
    data = load_data(cfg.dataset, cfg.data_dir or data_dir, cfg.seed, loader)
    n = cfg.workers
    try:
        part = partition(
            data.train_labels,
            n,
            cfg.partition.kind,
            num_classes=data.num_classes,
            chi=cfg.partition.chi,
            alpha=cfg.partition.alpha,
            seed=cfg.seed,
        )
    except CoreValueError as exc:
        raise ConfigError(f"partition: {exc}") from None
    topology = build_topology(cfg.topology, n, cfg.seed)
    profile = load_profile(profile_name or cfg.network.profile, n, cfg.seed)
    if profile is not None and cfg.compute_speed is not None:
        profile = profile.with_compute(cfg.compute_speed)
    factory = model_object or model_factory(cfg.model)
    label = model_label(model_object or cfg.model)
    device = resolve_device(cfg.device)
    use_device(device)
    model, layers, model_hash = checked_model(
        factory, data.input_shape, data.num_classes, cfg.seed, label, (data.train, device)
    )
    sizes = layer_bytes(model.state_dict(), layers, WIRE_ITEMSIZE[cfg.wire_dtype])
    divergence = np.stack([label_divergence(part.histograms[i], part.histograms) for i in range(n)])
    exp = Experiment(
        cfg, data, part, topology, profile, layers, sizes, divergence, factory,
        model_hash, device,
    )  # fmt: skip
    exp.worker_step(0)  # an algorithm of the user's own is imported and tried here
    return exp
