"""A run config from a path: one YAML file, or a seed-style directory of per-worker files."""

from __future__ import annotations

from pathlib import Path

from mpls_celery.config.run_config import RunConfig
from mpls_celery.config.seed_dirs import load_seed_dir
from mpls_celery.config.yaml_io import read_mapping, shown, validate
from mpls_celery.errors import ConfigError


def load_run_config(path: Path) -> RunConfig:
    try:
        is_dir = path.is_dir()
    except OSError as exc:  # a name too long for the file system, ...
        raise ConfigError(f"{shown(path)}: {exc.strerror or exc}") from None
    if is_dir:
        return load_seed_dir(path)
    config = validate(RunConfig, read_mapping(path), shown(path))
    return config.with_paths_from(path.parent)  # its data files: relative to the file
