"""What a run and each of its workers say about themselves: the typed model of the runtime's state
hashes, read by the launcher, `mpls status` and the dashboard alike.

A state hash is untrusted input (a `--secure` run's worker may write its own hash, and a bug may
write anything): `NodeState.from_fields` validates every field, keeps the valid ones and names the
rest, so a bad field is dropped and counted, never a crash and never adopted."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from enum import StrEnum
from typing import Any, TypedDict

import orjson


class RunState(StrEnum):
    RUNNING = "running"
    STOPPING = "stopping"  # asked to stop (`mpls down`, a stop condition): workers wind down
    FINISHED = "finished"


class WorkerState(StrEnum):
    QUEUED = "queued"  # its slice is waiting for a Celery process
    STARTING = "starting"  # a slice loads its data and model, or probes its links
    TRAINING = "training"
    PULLING = "pulling"  # waiting for its aggregation task's result
    IDLE = "idle"  # between slices: its next one waits for a Celery process
    FINISHED = "finished"  # reached its iteration limit
    STOPPED = "stopped"  # the run stopped before it finished
    DEAD = "dead"  # declared by the launcher: silent, nobody holds its lease
    FAILED = "failed"  # cannot go on (out of memory, a config it cannot load): see `error`

    @property
    def done(self) -> bool:
        return self in (WorkerState.FINISHED, WorkerState.STOPPED)


class ProbeStage(StrEnum):
    OFFERED = "offered"  # its probe blob is up: peers may time it
    DONE = "done"  # it has probed its own links


@dataclass(frozen=True)
class LastPull:
    """The worker's last aggregation, as the tables show it."""

    peers: int = 0
    layers: int = 0
    bytes: int = 0
    seconds: float = 0.0
    timeout: bool = False
    errors: int = 0

    @classmethod
    def from_json(cls, data: Any) -> LastPull:
        if not isinstance(data, dict):
            raise ValueError("not an object")
        out = cls(
            peers=_count(data.get("peers", 0)),
            layers=_count(data.get("layers", 0)),
            bytes=_count(data.get("bytes", 0)),
            seconds=_finite(data.get("seconds", 0.0)),
            timeout=bool(data.get("timeout", False)),
            errors=_count(data.get("errors", 0)),
        )
        return out


class NodeFields(TypedDict, total=False):
    """A partial update of a worker's state hash (the writer sets what changed)."""

    state: WorkerState
    k: int
    version: int
    loss: float | None
    acc: float | None
    pid: int
    host: str
    last_pull: LastPull
    bandwidth: float | None
    probe: ProbeStage
    probe_round: int
    store: str
    recovered: str
    dead_since: float
    error: str
    started: float


@dataclass(frozen=True)
class NodeState:
    """A worker's state hash, typed. Absent or invalid fields are None (or 0 for `k`)."""

    state: WorkerState | None = None
    k: int = 0  # iterations completed and recorded
    version: int | None = None  # the version it last published
    loss: float | None = None
    acc: float | None = None
    heartbeat: float | None = None  # unix s of its last sign of life
    pid: int | None = None
    host: str | None = None
    last_pull: LastPull | None = None
    bandwidth: float | None = None  # mean link estimate it plans with (bytes/s)
    probe: ProbeStage | None = None
    probe_round: int | None = None  # the last start-up probe round it finished
    store: str = ""  # where its snapshots live ('' = the central Redis)
    recovered: str | None = None  # how it repaired an unreadable snapshot of its own
    dead_since: float | None = None  # run time it was declared dead
    error: str | None = None  # why it failed
    started: float | None = None  # unix s its first slice began
    refused: int = 0  # values it read from Redis and refused (HINCRBY'd by the worker)
    failed_at: int | None = None  # the iteration its last failed slice was at
    failures: int = 0  # slices in a row that failed at `failed_at`

    @property
    def done(self) -> bool:
        return self.state is not None and self.state.done

    def silent_for(self, now: float) -> float | None:
        """Seconds since its last heartbeat (None: it never beat)."""
        return None if self.heartbeat is None else max(0.0, now - self.heartbeat)

    def with_state(self, state: WorkerState) -> NodeState:
        return replace(self, state=state)

    @classmethod
    def from_fields(cls, raw: Mapping[bytes, bytes]) -> tuple[NodeState, list[str]]:
        """The valid fields of a state hash, and the names of those that were refused."""
        values: dict[str, Any] = {}
        refused: list[str] = []
        for key_raw, value_raw in raw.items():
            key = key_raw.decode(errors="replace")
            parse = _PARSERS.get(key)
            if parse is None:
                refused.append(key)
                continue
            try:
                values[key] = parse(value_raw)
            except (ValueError, TypeError, orjson.JSONDecodeError, UnicodeDecodeError):
                refused.append(key)
        return cls(**values), refused


def encode_fields(update: NodeFields, beat: float | None) -> dict[str, bytes]:
    """A partial update as hash fields (JSON values); `beat`: the heartbeat to write with it."""
    out: dict[str, bytes] = {}
    for key, value in update.items():
        if isinstance(value, LastPull):
            out[key] = orjson.dumps(value.__dict__)
        elif isinstance(value, str):  # enums too: as they are
            out[key] = str(value).encode()
        else:
            out[key] = orjson.dumps(value)
    if beat is not None:
        out["heartbeat"] = orjson.dumps(beat)
    return out


def _json(raw: bytes) -> Any:
    return orjson.loads(raw)


MAX_TEXT = 2000  # longer text in a state hash is refused, not shown


def _text(raw: bytes) -> str:
    """Text fields (and enums) are written as they are, not as JSON."""
    if len(raw) > MAX_TEXT:
        raise ValueError("too long")
    return raw.decode()


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"not a count: {value!r}")
    return value


def _finite(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"not a finite number: {value!r}")
    return float(value)


def _optional_finite(raw: bytes) -> float | None:
    value = _json(raw)
    return None if value is None else _finite(value)


def _loss(raw: bytes) -> float | None:
    """Finite, or null: JSON has no NaN, and a diverged model's loss is NaN."""
    value = _json(raw)
    return None if value is None else _finite(value)


def _fraction(raw: bytes) -> float | None:
    value = _optional_finite(raw)
    if value is not None and not 0.0 <= value <= 1.0:
        raise ValueError(f"not a fraction: {value}")
    return value


_PARSERS: dict[str, Any] = {
    "state": lambda raw: WorkerState(_text(raw)),
    "k": lambda raw: _count(_json(raw)),
    "version": lambda raw: _count(_json(raw)),
    "loss": _loss,
    "acc": _fraction,
    "heartbeat": lambda raw: _finite(_json(raw)),
    "pid": lambda raw: _count(_json(raw)),
    "host": _text,
    "last_pull": lambda raw: LastPull.from_json(_json(raw)),
    "bandwidth": _optional_finite,
    "probe": lambda raw: ProbeStage(_text(raw)),
    "probe_round": lambda raw: _count(_json(raw)),
    "store": _text,
    "recovered": _text,
    "dead_since": lambda raw: _finite(_json(raw)),
    "error": _text,
    "started": lambda raw: _finite(_json(raw)),
    "refused": lambda raw: _count(int(raw)),
    "failed_at": lambda raw: _count(int(raw)),
    "failures": lambda raw: _count(int(raw)),
}
assert set(_PARSERS) == {f.name for f in fields(NodeState)}, "a NodeState field without a parser"


@dataclass(frozen=True)
class RunStatus:
    """A run's status hash, typed: written by its launcher (and `mpls down`), read by everyone."""

    state: RunState | None = None
    started: float | None = None  # unix s
    finished: float | None = None
    reason: str | None = None
    refused: int = 0  # values read from Redis and refused so far (launcher and workers)

    @property
    def running(self) -> bool:
        return self.state is RunState.RUNNING

    @classmethod
    def from_fields(cls, raw: Mapping[bytes, bytes]) -> RunStatus:
        values: dict[str, Any] = {}
        for key_raw, value_raw in raw.items():
            key = key_raw.decode(errors="replace")
            parse = _STATUS_PARSERS.get(key)
            if parse is None:
                continue
            try:
                values[key] = parse(value_raw)
            except (ValueError, TypeError, UnicodeDecodeError):
                continue
        return cls(**values)

    def to_fields(self) -> dict[str, str]:
        """The fields that are set, as text."""
        return {f.name: str(v) for f in fields(self) if (v := getattr(self, f.name)) is not None}


_STATUS_PARSERS: dict[str, Any] = {
    "state": lambda raw: RunState(raw.decode()),
    "started": lambda raw: _finite(float(raw)),
    "finished": lambda raw: _finite(float(raw)),
    "reason": _text,
    "refused": lambda raw: _count(int(raw)),
}
assert set(_STATUS_PARSERS) == {f.name for f in fields(RunStatus)}, "a RunStatus field unparsed"
