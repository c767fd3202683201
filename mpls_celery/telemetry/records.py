"""Frozen telemetry records; serialised only at the edge (`to_json` / `parse_record`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import orjson

from mpls_celery.errors import TelemetryError

if TYPE_CHECKING:  # reading records (mpls runs, status, report, tui) needs no torch
    from mpls_celery.core.scoring import Scores


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

    @classmethod
    def from_scores(
        cls, algo: str, t: float, epoch: int, scores: Scores, mean_loss: float
    ) -> EvalRecord:
        """The one way both engines record a scoring (`mean_loss`: the engine's own)."""
        return cls(
            algo=algo,
            t=t,
            epoch=epoch,
            mean_acc=scores.mean_acc,
            avg_model_acc=scores.avg_model_acc,
            mean_loss=mean_loss,
            worker_acc=[None if a is None else round(a, 4) for a in scores.worker_acc],
        )


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


def transfer_links(
    transfers: Iterable[tuple[int, float, float, float]], exact_seconds: bool = False
) -> dict[int, list[float]]:
    """An iteration's `links` (or a probe's): peer → [bytes, seconds, start], from (peer, bytes,
    seconds, start in run time) — the one shape both engines record. Seconds are kept to 0.1 ms,
    or `exact_seconds` (a probe on a fast link takes less)."""
    return {
        int(peer): [
            float(nbytes),
            float(seconds) if exact_seconds else round(float(seconds), 4),
            round(float(start), 4),
        ]
        for peer, nbytes, seconds, start in transfers
    }


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
