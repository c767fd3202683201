"""Validated decoders for what the runtime reads from Redis. Every byte read there is untrusted
input: a `--secure` run's worker may write its own keys, a bug may write anything. A value that
fails is refused with `InvalidState` (or reported as a reason), counted, and never adopted as
progress; nothing here crashes on garbage."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from mpls_celery.errors import InvalidState, TelemetryError
from mpls_celery.telemetry.records import (
    EvalRecord,
    IterationRecord,
    ProbeRecord,
    Record,
    parse_record,
)

# A worker's records arrive in iteration order; one may be lost with a process killed mid-way,
# so k may step forward by a few, never jump (a record claiming k = 99999 is refused).
MAX_RECORD_STEP = 8
# A head may be at most one version ahead of the iterations its worker recorded (the kill between
# publishing a version and emitting its record): a head further ahead is refused.
MAX_HEAD_LEAD = 1
MAX_VERSION = 2**53  # JSON numbers beyond this are not integers any more


@dataclass(frozen=True)
class Head:
    """A published version's index entry: its number, progress g per layer and its running sum."""

    worker: int
    version: int
    progress: list[float]  # g of this version
    total: list[float]  # running sum of g over the worker's versions
    t: float

    @classmethod
    def parse(cls, worker: int, raw: bytes) -> Head:
        """InvalidState unless `raw` is a head: a JSON object, a version in range, finite g."""
        try:
            data = orjson.loads(raw)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            version = data["version"]
            if isinstance(version, bool) or not isinstance(version, int):
                raise ValueError(f"version {version!r} is not an integer")
            if not 0 <= version < MAX_VERSION:
                raise ValueError(f"version {version} out of range")
            g = _finite_list(data["g"])
            total = _finite_list(data["gt"]) if "gt" in data else g
            if len(total) != len(g):
                raise ValueError("g and gt differ in length")
            t = _finite(data["t"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise InvalidState(f"worker {worker}'s head is not valid: {exc}") from None
        return cls(worker, version, g, total, t)

    def check_lead(self, recorded: int) -> None:
        """InvalidState when this head is further ahead of the worker's recorded iterations
        than a kill between publish and record can leave it."""
        if self.version > recorded + MAX_HEAD_LEAD:
            raise InvalidState(
                f"worker {self.worker}'s head claims version {self.version} after "
                f"{recorded} recorded iterations"
            )


def _finite(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{value!r} is not a finite number")
    return float(value)


def _finite_list(values: Any) -> list[float]:
    if not isinstance(values, list):
        raise ValueError("not a list")
    return [_finite(v) for v in values]


@dataclass(frozen=True)
class RecordBounds:
    """What a record of this run may claim."""

    workers: int
    layers: int
    algorithm: str
    max_pull_bytes: float  # every layer from every peer, with room for headers


@dataclass
class Refusals:
    """Refused values by kind (`records`, `heads`, `node_state`, …) and the latest reasons."""

    counts: Counter[str] = field(default_factory=Counter)
    latest: dict[str, str] = field(default_factory=dict)

    def add(self, kind: str, reason: str, n: int = 1) -> None:
        self.counts[kind] += n
        self.latest[kind] = reason[:300]

    def total(self) -> int:
        return sum(self.counts.values())

    def document(self) -> dict[str, Any]:
        return {"counts": dict(sorted(self.counts.items())), "latest": dict(self.latest)}


def decode_stream_record(raw: bytes, owner: int | None, bounds: RecordBounds) -> Record:
    """A record read from worker `owner`'s stream (None: the launcher's own); InvalidState when
    it is malformed or claims what its writer may not (another worker's name, a peer outside
    the run, bytes no pull can move)."""
    try:
        record = parse_record(raw)
    except TelemetryError as exc:
        raise InvalidState(f"malformed record: {exc}") from None
    try:
        problem = _record_problem(record, owner, bounds)
    except (TypeError, ValueError, AttributeError) as exc:  # a field of the wrong type
        problem = f"malformed {record.kind} record: {exc}"
    if problem:
        raise InvalidState(problem)
    return record


def _record_problem(record: Record, owner: int | None, b: RecordBounds) -> str | None:
    if isinstance(record, EvalRecord):
        return None if owner is None else f"worker {owner} wrote an evaluation record"
    if isinstance(record.worker, bool) or not isinstance(record.worker, int):
        return f"record worker {record.worker!r}"
    if record.worker != owner:
        return f"worker {owner} wrote a record in worker {record.worker}'s name"
    if record.algo != b.algorithm:
        return f"record of algorithm {record.algo!r} in a {b.algorithm} run"
    if not (math.isfinite(record.t) and record.t >= 0):
        return f"record time {record.t!r}"
    links = record.links or {}
    if any(not 0 <= p < b.workers or p == owner for p in links):
        return f"a link to a peer outside the run: {sorted(links)}"
    if any(len(v) != 3 or not all(math.isfinite(x) and x >= -1 for x in v) for v in links.values()):
        return "a link entry that is not [bytes, seconds, start]"
    if isinstance(record, ProbeRecord):
        return None
    return _iteration_problem(record, b)


def _iteration_problem(record: IterationRecord, b: RecordBounds) -> str | None:
    if not all(type(x) is int for x in (record.k, record.epoch, record.peers_reachable)):
        return "an iteration record whose counts are not integers"
    numbers = (record.bytes_pulled, record.pull_seconds, record.compute_seconds)
    if record.k < 0 or record.epoch != record.k + 1 or not 0 <= record.peers_reachable < b.workers:
        return f"iteration k={record.k} epoch={record.epoch} peers={record.peers_reachable}"
    if not all(math.isfinite(x) and x >= 0 for x in numbers):
        return f"negative or non-finite bytes/seconds {numbers}"
    if record.bytes_pulled > b.max_pull_bytes:
        return f"{record.bytes_pulled:.0f} bytes pulled: more than a whole pull can move"
    for peer, layers in record.plan.items():
        if not 0 <= peer < b.workers or peer == record.worker:
            return f"a plan with peer {peer}"
        if any(not isinstance(x, int) or not 0 <= x < b.layers for x in layers):
            return f"a plan with layers {layers}"
    return None


def decode_links(raw: Mapping[bytes, bytes]) -> dict[int, float]:
    """peer → bytes/s; entries that are not a peer id and a positive finite speed are dropped."""
    out: dict[int, float] = {}
    for peer, speed in raw.items():
        try:
            value = float(speed)
            if math.isfinite(value) and value > 0:
                out[int(peer)] = value
        except ValueError:
            continue
    return out
