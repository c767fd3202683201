"""Network/compute profiles by name (shipped YAML files or built-ins) or from a user's YAML file."""

from __future__ import annotations

from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from mpls_celery.config.yaml_io import read_mapping, validate
from mpls_celery.core.network_profile import (
    MBIT,
    NetworkProfile,
    Outage,
    random_profile,
    rooms_profile,
    uniform_profile,
)
from mpls_celery.errors import ConfigError

BUILTIN_PROFILES = ("none", "uniform", "random", "paper30")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class _WithSteps(_Strict):
    step_seconds: dict[str, float] = Field(
        default_factory=dict, description="model → seconds of one SGD step at compute speed 1.0"
    )


class Dynamics(_Strict):
    noise_sigma: float = Field(0.0, ge=0)
    slot_seconds: float = Field(1.0, gt=0)
    outage_prob: float = Field(0.0, ge=0, lt=1)
    outages: list[tuple[int, int, float, float]] = []


class DeviceGroup(_Strict):
    count: int = Field(1, ge=1)
    kind: str
    mode: int | None = None
    clock_ghz: float = Field(gt=0)
    room: str


class RoomsFile(_WithSteps):
    name: str
    rooms_mbit: dict[str, float]
    hops: int = Field(2, ge=1)
    device_kinds: dict[str, dict[str, float]]
    devices: list[DeviceGroup]
    dynamics: Dynamics = Dynamics()


class LinksFile(_WithSteps):
    name: str
    workers: int = Field(ge=1)
    default_mbit: float = Field(gt=0)
    links: list[tuple[int, int, float]] = []
    compute: list[float] | float = 1.0
    dynamics: Dynamics = Dynamics()
    kind: Literal["links"] = "links"


def load_profile(name_or_path: str, workers: int, seed: int = 0) -> NetworkProfile | None:
    """None for 'none' (no emulation: the runtime measures real speeds)."""
    if name_or_path == "none":
        return None
    if name_or_path == "uniform":
        return uniform_profile(workers)
    if name_or_path == "random":
        return random_profile(workers, seed=seed)
    if name_or_path in BUILTIN_PROFILES:
        ref = resources.files("mpls_celery.core") / "profiles" / f"{name_or_path}.yaml"
        with resources.as_file(ref) as path:
            return _from_file(Path(path), workers, seed)
    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        raise ConfigError(
            f"unknown network profile {name_or_path!r}; choose one of: "
            f"{', '.join(BUILTIN_PROFILES)}, or a path to a profile YAML file"
        )
    return _from_file(path, workers, seed)


def _from_file(path: Path, workers: int, seed: int) -> NetworkProfile:
    data = read_mapping(path)
    if "rooms_mbit" in data:
        rooms = validate(RoomsFile, data, str(path))
        return _with_steps(_rooms(rooms, workers, seed, path), rooms)
    links = validate(LinksFile, data, str(path))
    return _with_steps(_links(links, workers, seed, path), links)


def _with_steps(profile: NetworkProfile, spec: _WithSteps) -> NetworkProfile:
    return replace(profile, step_seconds=tuple(sorted(spec.step_seconds.items())))


def _rooms(spec: RoomsFile, workers: int, seed: int, path: Path) -> NetworkProfile:
    """Each of N workers takes device ⌊w·D/N⌋ of the D listed (the identity when N = D)."""
    listed: list[tuple[DeviceGroup, str]] = []
    for group in spec.devices:
        if group.kind not in spec.device_kinds:
            raise ConfigError(f"{path}: devices: unknown kind {group.kind!r}")
        mode = f" mode {group.mode}" if group.mode is not None else ""
        listed += [(group, f"{group.kind}{mode}, room {group.room}")] * group.count
    chosen = [listed[w * len(listed) // workers] for w in range(workers)]
    throughput = np.array(
        [spec.device_kinds[g.kind].get("cuda_cores", 1.0) * g.clock_ghz for g, _ in chosen]
    )
    base = rooms_profile(
        spec.name,
        [g.room for g, _ in chosen],
        spec.rooms_mbit,
        throughput / throughput.max(),
        tuple(desc for _, desc in chosen),
        hops=spec.hops,
    )
    return _with_dynamics(base, spec.dynamics, seed)


def _links(spec: LinksFile, workers: int, seed: int, path: Path) -> NetworkProfile:
    if spec.workers != workers:
        raise ConfigError(
            f"{path}: workers: profile is for {spec.workers} workers, run has {workers}"
        )
    rate = np.full((workers, workers), spec.default_mbit * MBIT)
    for a, b, mbit in spec.links:
        if not (0 <= a < workers and 0 <= b < workers):
            raise ConfigError(f"{path}: links: ({a}, {b}) names a worker outside 0..{workers - 1}")
        rate[a, b] = rate[b, a] = mbit * MBIT
    np.fill_diagonal(rate, 0.0)
    compute = np.broadcast_to(np.asarray(spec.compute, dtype=np.float64), (workers,)).copy()
    if compute.shape != (workers,):
        raise ConfigError(f"{path}: compute: need one speed or {workers}")
    base = NetworkProfile(spec.name, rate, compute)
    return _with_dynamics(base, spec.dynamics, seed)


def _with_dynamics(base: NetworkProfile, dyn: Dynamics, seed: int) -> NetworkProfile:
    outages = tuple(Outage(a, b, start, end) for a, b, start, end in dyn.outages)
    return replace(
        base,
        noise_sigma=dyn.noise_sigma,
        slot_seconds=dyn.slot_seconds,
        outage_prob=dyn.outage_prob,
        outages=outages,
        seed=seed,
    )
