"""Read MNIST's IDX files (optionally gzipped) without torchvision, which insists on both splits."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from mpls_celery.errors import ConfigError


def _read(path: Path, size: int = -1) -> bytes:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw: bytes = handle.read(size)
    except (OSError, EOFError) as exc:
        raise ConfigError(f"{path}: cannot read IDX file ({exc})") from exc
    return raw


def idx_length(path: Path) -> int:
    """How many images or labels (the header's first size), without reading the rest."""
    return int.from_bytes(_read(path, 8)[4:8], "big")


def read_idx(path: Path) -> NDArray[np.uint8]:
    raw = _read(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ConfigError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=header)
    if data.size != int(np.prod(shape)):
        raise ConfigError(f"{path}: truncated IDX file ({data.size} values for shape {shape})")
    return data.reshape(shape)
