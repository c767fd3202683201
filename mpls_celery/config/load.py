"""A run config from a path: one YAML file, or a seed-style directory of per-worker files."""

from __future__ import annotations

from pathlib import Path

from mpls_celery.config.run_config import RunConfig
from mpls_celery.config.seed_dirs import load_seed_dir
from mpls_celery.config.yaml_io import read_mapping, validate


def load_run_config(path: Path) -> RunConfig:
    if path.is_dir():
        return load_seed_dir(path)
    return validate(RunConfig, read_mapping(path), str(path))
