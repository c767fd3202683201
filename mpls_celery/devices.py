"""Which torch device a run trains on: `--device auto|cpu|cuda[:i]|mps`. `auto` takes a CUDA GPU
when torch sees one, else Apple's MPS, else the CPU. Models, batches, mixing and evaluation run
on the device; snapshots travel as CPU bytes (the codec copies once each way).

Same seed, same device, same machine → the same metrics: on CUDA that takes deterministic
kernels, which `use_device` asks torch for (warning, not failing, where an op has none). Across
devices (and across CPUs) float results differ in their last digits."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where a device is used, not where one is named
    import torch

from mpls_celery.errors import ConfigError

DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


def check_device(spec: str) -> str:
    """The spelling only (any machine may run the config); ValueError names what is accepted."""
    if not DEVICE.fullmatch(spec):
        raise ValueError(f"unknown device {spec!r}; choose one of: auto, cpu, cuda, cuda:N, mps")
    return spec


def resolve_device(spec: str) -> torch.device:
    """ConfigError when the device asked for is not on this machine."""
    import torch

    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(spec)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {spec!r}: torch sees no CUDA device on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device {spec!r}: this machine has {torch.cuda.device_count()} CUDA devices"
            )
    if device.type == "mps" and not _mps_available():
        raise ConfigError(f"device {spec!r}: torch sees no MPS device on this machine")
    return device


def use_device(device: torch.device) -> None:
    """Deterministic kernels where the device has a choice (CUDA)."""
    import torch

    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)


def limit_gpu_memory(fraction: float, device: torch.device) -> None:
    """Many worker processes share one GPU: each may take at most this share of its memory (a
    process that needs more fails with CUDA's out-of-memory error, which ends the run with one
    line naming the worker and host)."""
    import torch

    if device.type == "cuda" and 0 < fraction < 1:
        torch.cuda.set_per_process_memory_fraction(fraction, device)


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())
