"""Frozen telemetry records; serialised only at the edge (`to_json` / `parse_record`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import orjson

from mpls_celery.errors import TelemetryError


@dataclass(frozen=True)
class IterationRecord:
    """One local iteration of one worker: what it trained, what it pulled from whom, how long."""

    algo: str
    worker: int
    k: int  # local iteration index; the version it published is k + 1
    t: float  # seconds since run start (virtual in the simulator, wall in the runtime)
    epoch: int  # T: local iterations completed over all workers, this one included
    loss: float
    plan: dict[int, list[int]]  # peer → layer indices pulled
    bytes_pulled: float
    pull_seconds: float  # λ
    compute_seconds: float
    peers_reachable: int
    # peer → [wire bytes, seconds, start (run time)] of each transfer of this pull; bytes 0: the
    # peer brought nothing back. Runtime runs and replays; None (omitted from JSON, so simulator
    # records keep their bytes) otherwise.
    links: dict[int, list[float]] | None = None
    kind: Literal["iteration"] = "iteration"


@dataclass(frozen=True)
class EvalRecord:
    """Test accuracy at one moment: mean over workers and of the averaged model."""

    algo: str
    t: float
    epoch: int
    mean_acc: float
    avg_model_acc: float
    mean_loss: float
    worker_acc: list[float | None] = field(default_factory=list)  # None: head unreadable
    kind: Literal["eval"] = "eval"


@dataclass(frozen=True)
class ProbeRecord:
    """Link speeds a worker probed (runtime, `link_speeds: probed`): per peer [bytes, seconds,
    start (run time)] of one read of its probe blob, the link alone."""

    algo: str
    worker: int
    t: float
    links: dict[int, list[float]]
    kind: Literal["probe"] = "probe"


Record = IterationRecord | EvalRecord | ProbeRecord


def to_json(record: Record) -> bytes:
    """Sorted keys, so the same records always give the same bytes."""
    data = asdict(record)
    if data.get("links", 0) is None:
        del data["links"]
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)


def parse_record(line: bytes | str) -> Record:
    try:
        data: Any = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise TelemetryError(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise TelemetryError("a record must be a JSON object")
    kind = data.get("kind")
    try:
        if kind == "iteration":
            data["plan"] = {int(peer): list(layers) for peer, layers in data["plan"].items()}
            if data.get("links") is not None:
                data["links"] = {int(p): [float(x) for x in v] for p, v in data["links"].items()}
            return IterationRecord(**data)
        if kind == "eval":
            return EvalRecord(**data)
        if kind == "probe":
            data["links"] = {int(p): [float(x) for x in v] for p, v in data["links"].items()}
            return ProbeRecord(**data)
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise TelemetryError(f"malformed {kind} record: {exc}") from exc
    raise TelemetryError(f"unknown record kind {kind!r}")
