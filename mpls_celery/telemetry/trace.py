"""A run's trace: what its network and devices did, per worker and per link, over time — the input
of `mpls sim --replay` and `mpls profile fit`. Written as `trace.json` in a runtime run directory
at the end of the run; rebuilt from `metrics.jsonl` when a run directory lacks one.

    {"format": "mpls-trace/1", "workers": N, "duration": s,
     "iterations": [[worker, end, compute_s, pull_wait_s, transfer_s, period_s], ...],
     "transfers":  [[puller, peer, start, seconds, bytes], ...],
     "outages":    [[puller, peer, start, end], ...],
     "probes":     [[puller, peer, start, seconds, bytes], ...]}

Times are seconds since the run started. `pull_wait_s` runs from asking for the pull to having
its result; `transfer_s` is its longest transfer; `period_s` is the time since the worker's
previous iteration ended (its first iteration: 0). An outage is a planned pull that brought nothing
back from that peer (refused or timed out). A probe is one timed read of a peer's probe blob, the
link alone (runs with `link_speeds: probed`; traces written before probes lack the key)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from mpls_celery.errors import TelemetryError
from mpls_celery.telemetry.records import IterationRecord, ProbeRecord, Record
from mpls_celery.telemetry.rundir import read_metrics

TRACE = "trace.json"
FORMAT = "mpls-trace/1"


@dataclass(frozen=True)
class Iteration:
    worker: int
    end: float
    compute: float
    pull_wait: float
    transfer: float  # its longest transfer
    period: float  # 0 for a worker's first iteration

    @property
    def overhead(self) -> float:
        """Time of the iteration spent neither training nor moving bytes: task hand-offs,
        publishing, averaging (the simulator adds it to max(compute, transfer time))."""
        return max(0.0, self.period - max(self.compute, self.transfer)) if self.period else 0.0


@dataclass(frozen=True)
class Transfer:
    puller: int
    peer: int
    start: float
    seconds: float
    nbytes: float

    @property
    def rate(self) -> float:
        return self.nbytes / self.seconds if self.seconds > 0 else 0.0


def record_transfers(record: IterationRecord) -> list[Transfer]:
    """The transfers one iteration record lists (bytes 0: the peer brought nothing back). Older
    records carry no start time: their pull is taken to have started when the wait did."""
    out = []
    for peer, (nbytes, seconds, *start) in (record.links or {}).items():
        begin = start[0] if start else record.t - record.pull_seconds
        out.append(Transfer(record.worker, peer, begin, seconds, nbytes))
    return out


@dataclass(frozen=True)
class Trace:
    workers: int
    duration: float
    iterations: tuple[Iteration, ...]
    transfers: tuple[Transfer, ...]
    outages: tuple[tuple[int, int, float, float], ...] = ()
    probes: tuple[Transfer, ...] = ()

    def first_starts(self) -> tuple[float, ...]:
        """When each worker's first iteration began (its first end less the longer of training
        and the pull wait; 0 for a worker without iterations): start-up, probes included."""
        starts = [math.inf] * self.workers
        for i in self.iterations:
            starts[i.worker] = min(starts[i.worker], i.end - max(i.compute, i.pull_wait))
        return tuple(max(s, 0.0) if math.isfinite(s) else 0.0 for s in starts)

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "format": FORMAT,
                "workers": self.workers,
                "duration": self.duration,
                "iterations": [[i.worker, i.end, i.compute, i.pull_wait, i.transfer, i.period]
                               for i in self.iterations],
                "transfers": [[x.puller, x.peer, x.start, x.seconds, x.nbytes]
                              for x in self.transfers],
                "outages": [list(o) for o in self.outages],
                "probes": [[x.puller, x.peer, x.start, x.seconds, x.nbytes] for x in self.probes],
            }
        )  # fmt: skip

    @classmethod
    def from_json(cls, raw: bytes) -> Trace:
        try:
            data: Any = orjson.loads(raw)
            if data.get("format") != FORMAT:
                raise TelemetryError(f"not an {FORMAT} trace (format {data.get('format')!r})")
            return cls(
                workers=int(data["workers"]),
                duration=float(data["duration"]),
                iterations=tuple(
                    Iteration(int(w), float(e), float(c), float(p), float(x), float(d))
                    for w, e, c, p, x, d in data["iterations"]
                ),
                transfers=_transfers(data["transfers"]),
                outages=tuple(
                    (int(a), int(b), float(s), float(e)) for a, b, s, e in data["outages"]
                ),
                probes=_transfers(data.get("probes", [])),
            )
        except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError) as exc:
            raise TelemetryError(f"malformed trace: {exc}") from exc


def _transfers(rows: Iterable[Any]) -> tuple[Transfer, ...]:
    return tuple(
        Transfer(int(a), int(b), float(s), float(sec), float(n)) for a, b, s, sec, n in rows
    )


def build_trace(records: Iterable[Record], workers: int) -> Trace:
    records = list(records)
    iterations: list[Iteration] = []
    transfers: list[Transfer] = []
    outages: list[tuple[int, int, float, float]] = []
    last_end: dict[int, float] = {}
    for r in sorted(
        (r for r in records if isinstance(r, IterationRecord)), key=lambda r: (r.worker, r.t)
    ):
        period = r.t - last_end[r.worker] if r.worker in last_end else 0.0
        last_end[r.worker] = r.t
        moved = [x for x in record_transfers(r) if x.nbytes > 0]
        longest = max((x.seconds for x in moved), default=0.0)
        iterations.append(
            Iteration(r.worker, r.t, r.compute_seconds, r.pull_seconds, longest, round(period, 4))
        )
        transfers += moved
        outages += [
            (x.puller, x.peer, x.start, x.start + max(x.seconds, r.pull_seconds))
            for x in record_transfers(r)
            if x.nbytes <= 0
        ]
    probes = [
        Transfer(r.worker, peer, start, seconds, nbytes)
        for r in records
        if isinstance(r, ProbeRecord)
        for peer, (nbytes, seconds, start) in r.links.items()
    ]
    duration = max([i.end for i in iterations], default=0.0)
    return Trace(
        workers, duration, tuple(iterations), tuple(transfers), tuple(outages), tuple(probes)
    )


def write_trace(run_dir: Path, trace: Trace) -> None:
    (run_dir / TRACE).write_bytes(trace.to_json())


def read_trace(run_dir: Path, workers: int) -> Trace:
    """The run's trace.json, else the trace rebuilt from its metrics."""
    path = run_dir / TRACE
    if path.exists():
        return Trace.from_json(path.read_bytes())
    return build_trace(read_metrics(run_dir), workers)
