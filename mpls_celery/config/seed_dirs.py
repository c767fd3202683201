"""Compatibility with the earlier public implementation's per-worker YAML files
(`generate_configs.py`): read such a directory as one RunConfig, and write one from a RunConfig."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from mpls_celery.config.run_config import (
    PartitionConfig,
    RunConfig,
    TopologyConfig,
    TrainingConfig,
)
from mpls_celery.config.yaml_io import read_mapping, validate
from mpls_celery.core.topology import Topology
from mpls_celery.errors import ConfigError

DATASET_ALIASES = {"MNIST": "mnist", "CIFAR10": "cifar10", "CIFAR100": "cifar100"}


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)


class SeedPeer(_Loose):
    id: int
    address: str = ""


class SeedData(_Loose):
    partition_id: int | None = None
    dataset: str = "mnist"
    non_iid_level: float = Field(0.0, ge=0, le=1)


class SeedTraining(_Loose):
    batch_size: int = Field(64, ge=1)
    learning_rate: float = Field(0.01, gt=0)
    local_epochs: int = Field(1, ge=1)
    max_iterations: int = Field(100, ge=1)


class SeedMpls(_Loose):
    tau1: float = 0.5
    tau2: float = 0.5


class SeedSystem(_Loose):
    compute_speed: float = Field(1.0, gt=0)
    device: str = "cpu"


class SeedWorker(_Loose):
    worker_id: int = Field(ge=0)
    listen_address: str = ""
    peers: list[SeedPeer] = []
    data: SeedData = SeedData()
    training: SeedTraining = SeedTraining()
    mpls: SeedMpls = SeedMpls()
    system: SeedSystem = SeedSystem()


def load_seed_dir(folder: Path) -> RunConfig:
    files = sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml"))
    if not files:
        raise ConfigError(f"{folder}: no worker YAML files found")
    workers = [validate(SeedWorker, read_mapping(f), str(f)) for f in files]
    by_id = {w.worker_id: w for w in workers}
    if len(by_id) != len(workers):
        raise ConfigError(f"{folder}: two files share a worker_id")
    base = min(by_id)
    missing = sorted(set(range(base, base + len(by_id))) - set(by_id))
    if missing or base not in (0, 1):
        raise ConfigError(
            f"{folder}: worker ids must be contiguous from 0; missing {missing or [0]}"
        )
    ordered = [by_id[i] for i in sorted(by_id)]
    edges = sorted(
        {
            (min(w.worker_id, p.id) - base, max(w.worker_id, p.id) - base)
            for w in ordered
            for p in w.peers
        }
    )
    first = ordered[0]
    chi = first.data.non_iid_level
    data = {
        "workers": len(ordered),
        "algorithm": "mpls",
        "tau1": first.mpls.tau1,
        "tau2": first.mpls.tau2,
        "dataset": DATASET_ALIASES.get(first.data.dataset, first.data.dataset),
        "partition": PartitionConfig(kind="noniid" if chi > 0 else "iid", chi=chi or 0.5),
        "topology": TopologyConfig(kind="edges", edges=edges),
        "training": TrainingConfig(
            batch_size=first.training.batch_size,
            lr=first.training.learning_rate,
            local_steps=first.training.local_epochs,
            iterations=first.training.max_iterations,
        ),
        "compute_speed": [w.system.compute_speed for w in ordered],
    }
    return validate(RunConfig, data, str(folder))


def write_seed_dir(
    cfg: RunConfig, topology: Topology, folder: Path, base_port: int = 50051
) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    address = [f"localhost:{base_port + i}" for i in range(cfg.workers)]
    chi = cfg.partition.chi if cfg.partition.kind == "noniid" else 0.0
    written = []
    for i in range(cfg.workers):
        doc = {
            "worker_id": i,
            "listen_address": address[i],
            "peers": [{"id": j, "address": address[j]} for j in topology.neighbours(i)],
            "data": {"partition_id": i, "dataset": cfg.dataset, "non_iid_level": chi},
            "training": {
                "batch_size": cfg.training.batch_size,
                "learning_rate": cfg.training.lr,
                "local_epochs": cfg.training.local_steps,
                "max_iterations": cfg.training.iterations or 100,
            },
            "mpls": {"tau1": cfg.tau1, "tau2": cfg.tau2},
            "system": {
                "compute_speed": (cfg.compute_speed or [1.0] * cfg.workers)[i],
                "device": "cpu",
            },
        }
        path = folder / f"worker_{i}.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        written.append(path)
    return written
