"""Devices: `auto` takes what the machine has, a device it lacks is one line, and both engines
train on the device they are given — CUDA and MPS where this machine has them (skipped where
not), the CPU everywhere."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mpls_celery.config.run_config import RunConfig
from mpls_celery.devices import check_device, resolve_device
from mpls_celery.errors import ConfigError
from mpls_celery.sim.engine import SimOptions
from mpls_celery.sim.runner import SimRequest, run_simulation
from mpls_celery.telemetry.rundir import METRICS

CUDA = torch.cuda.is_available()
MPS = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
SMALL = RunConfig().with_overrides(
    workers=4, model="lenet5", dataset="digits",
    **{"topology.kind": "full", "network.profile": "paper30", "training.lr": 0.05},
)  # fmt: skip


def simulate(tmp_path: Path, device: str, engine: str = "auto") -> bytes:
    options = SimOptions(
        "mpls", until=1.0, eval_every=0.5, eval_samples=60, step_seconds=0.02, engine=engine
    )
    request = SimRequest(SMALL.with_overrides(device=device), ("mpls",), options, Path("."),
                         tmp_path, jobs=1)  # fmt: skip
    return (run_simulation(request) / METRICS).read_bytes()


def test_auto_takes_what_there_is_and_a_missing_device_is_one_line():
    expected = "cuda" if CUDA else "mps" if MPS else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        check_device("tpu")
    if not CUDA:
        with pytest.raises(ConfigError, match="torch sees no CUDA device"):
            resolve_device("cuda:0")


def test_the_cpu_engine_is_deterministic_per_seed(tmp_path):
    assert simulate(tmp_path / "a", "cpu") == simulate(tmp_path / "b", "cpu")


@pytest.mark.skipif(not CUDA, reason="no CUDA device on this machine")
def test_the_simulator_trains_on_cuda_deterministically_and_like_the_cpu(tmp_path):
    from tests.golden import assert_same_records  # a tolerance, as across CPUs

    first, second = simulate(tmp_path / "a", "cuda"), simulate(tmp_path / "b", "cuda")
    assert first == second
    cpu = simulate(tmp_path / "cpu", "cpu")
    assert len(first.splitlines()) == len(cpu.splitlines())
    with pytest.raises(AssertionError):  # other kernels: not the same bytes ...
        assert first == cpu
    assert_same_records(first.splitlines()[:3], cpu.splitlines()[:3])  # ... nor far apart


@pytest.mark.skipif(not MPS, reason="no MPS device on this machine")
def test_the_simulator_trains_on_mps(tmp_path):
    assert simulate(tmp_path, "mps")


@pytest.mark.skipif(not CUDA, reason="no CUDA device on this machine")
def test_on_cuda_auto_is_the_batched_engine_and_agrees_with_the_sequential_one(tmp_path):
    from tests.golden import assert_same_records

    auto, batched = simulate(tmp_path / "a", "cuda"), simulate(tmp_path / "b", "cuda", "batched")
    assert auto == batched  # auto picked batched, deterministically
    sequential = simulate(tmp_path / "s", "cuda", "sequential")
    assert len(batched.splitlines()) == len(sequential.splitlines())
    assert_same_records(batched.splitlines()[:3], sequential.splitlines()[:3])
