"""The two messages of a pull, as frozen dataclasses with one codec each: the request a worker
sends to its aggregation task (through Celery, JSON) and the result the task leaves in the
worker's mailbox (a Redis hash: per-layer sums as encoded tensors, plus metadata)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from mpls_celery.core.link_model import MIN_MEASURED_BYTES
from mpls_celery.errors import InvalidState


@dataclass(frozen=True)
class PullRequest:
    run_id: str
    worker: int  # the puller
    k: int  # its iteration: the result is for (worker, k) only
    plan: Mapping[int, tuple[int, ...]]  # peer → layer indices
    emulated_bps: Mapping[int, float] | None = None  # per peer, when links are emulated

    def to_json(self) -> dict[str, Any]:
        """JSON-safe (Celery's JSON turns int dict keys into strings: use pairs)."""
        return {
            "run": self.run_id,
            "worker": self.worker,
            "k": self.k,
            "plan": [[peer, list(layers)] for peer, layers in self.plan.items()],
            "emulated": None
            if self.emulated_bps is None
            else [[peer, bps] for peer, bps in self.emulated_bps.items()],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PullRequest:
        emulated = data.get("emulated")
        return cls(
            run_id=str(data["run"]),
            worker=int(data["worker"]),
            k=int(data["k"]),
            plan={int(p): tuple(int(x) for x in layers) for p, layers in data["plan"]},
            emulated_bps=None if emulated is None else {int(p): float(b) for p, b in emulated},
        )


@dataclass(frozen=True)
class Transfer:
    """One peer's part of a pull, on the wire: bytes, seconds, and when it started (unix s)."""

    nbytes: int
    seconds: float
    started: float


@dataclass(frozen=True)
class PullResult:
    counts: tuple[int, ...]  # copies summed per layer
    sums: tuple[bytes | None, ...]  # per layer: the encoded sum of its copies, or None
    versions: Mapping[int, int | None] = field(default_factory=dict)  # peer → version read
    errors: Mapping[int, str] = field(default_factory=dict)  # peer → why it was refused
    nbytes: int = 0
    transfers: Mapping[int, Transfer] = field(default_factory=dict)  # per peer
    seconds: float = 0.0

    def speeds(self, min_bytes: int = MIN_MEASURED_BYTES) -> dict[int, float]:
        """Peer → measured bytes/s, from the transfers big enough to measure the link."""
        return {
            p: t.nbytes / t.seconds
            for p, t in self.transfers.items()
            if t.nbytes >= min_bytes and t.seconds > 0
        }

    def to_fields(self) -> dict[str, bytes]:
        meta = {
            "counts": list(self.counts),
            "versions": [[p, v] for p, v in self.versions.items()],
            "errors": [[p, e] for p, e in self.errors.items()],
            "bytes": self.nbytes,
            "transfers": [[p, t.nbytes, t.seconds, t.started] for p, t in self.transfers.items()],
            "seconds": self.seconds,
        }
        fields = {f"l{i}": blob for i, blob in enumerate(self.sums) if blob is not None}
        fields["meta"] = orjson.dumps(meta)
        return fields

    @classmethod
    def from_fields(cls, fields: Mapping[str, bytes]) -> PullResult:
        """InvalidState when the mailbox holds something that is not a pull result."""
        try:
            meta = orjson.loads(fields["meta"])
            counts = tuple(int(c) for c in meta["counts"])
            return cls(
                counts=counts,
                sums=tuple(fields.get(f"l{i}") for i in range(len(counts))),
                versions={int(p): None if v is None else int(v) for p, v in meta["versions"]},
                errors={int(p): str(e) for p, e in meta["errors"]},
                nbytes=int(meta["bytes"]),
                transfers={
                    int(p): Transfer(int(b), float(s), float(t)) for p, b, s, t in meta["transfers"]
                },
                seconds=float(meta["seconds"]),
            )
        except (KeyError, TypeError, ValueError, orjson.JSONDecodeError) as exc:
            raise InvalidState(f"malformed pull result: {exc!r}") from exc
