"""Telemetry in Redis. Each worker appends its records to a stream of its own (a `--secure`
worker may write only its own keys, so it cannot speak for another), with its state and links
in the same round trip; the launcher drains every stream into metrics.jsonl, trims what it has
written, and keeps short lists of accepted records for the dashboard."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import redis

from mpls_celery.runtime.keys import RunKeys
from mpls_celery.runtime.state.replies import text
from mpls_celery.telemetry.records import EvalRecord, IterationRecord, Record, to_json
from mpls_celery.telemetry.states import NodeFields, encode_fields

# A stream holds what the launcher has not drained yet: at most this many entries (approximately)
# per worker, reached only while no launcher is attached (see launch/heartbeat.py for how long
# workers go on without one).
STREAM_MAXLEN = 20_000
RECENT = 100  # a worker's last iterations, and the last evaluations, for the dashboard
TAIL = 30  # the last accepted records of the whole run, for the dashboard's event list


@dataclass(frozen=True)
class StreamEntry:
    worker: int | None  # whose stream (None: the launcher's own)
    entry_id: str
    raw: bytes | None  # the record's bytes (None: the entry has no record field)

    @property
    def order(self) -> tuple[int, int]:
        """Stream ids are <ms>-<seq> from one server clock: entries of all streams sort by it."""
        ms, _, seq = self.entry_id.partition("-")
        return int(ms), int(seq or 0)


class EventLog:
    def __init__(self, client: redis.Redis, keys: RunKeys) -> None:
        self._r, self.keys = client, keys

    # a worker's side -------------------------------------------------------------------------
    def emit(
        self,
        record: Record,
        state: NodeFields | None = None,
        links: Mapping[int, float] | None = None,
    ) -> None:
        """Append to the worker's stream and recent list, and update its state hash and links,
        in one transaction (the record and the state's k land together)."""
        assert not isinstance(record, EvalRecord), "evaluations are the launcher's"
        worker = record.worker
        data = to_json(record)
        pipe = self._r.pipeline(transaction=True)
        pipe.xadd(self.keys.events(worker), {"r": data}, maxlen=STREAM_MAXLEN, approximate=True)
        if isinstance(record, IterationRecord):
            pipe.lpush(self.keys.recent(worker), data)
            pipe.ltrim(self.keys.recent(worker), 0, RECENT - 1)
            self._count_traffic(pipe, record)
        if state is not None:
            mapping = encode_fields(state, time.time())
            pipe.hset(self.keys.state(worker), mapping=mapping)  # type: ignore[arg-type]
        if links:
            pipe.hset(self.keys.links(worker), mapping=links)  # type: ignore[arg-type]
        pipe.execute()

    def _count_traffic(self, pipe: redis.client.Pipeline, record: IterationRecord) -> None:
        traffic = self.keys.traffic(record.worker)
        for peer, (nbytes, seconds, *_) in (record.links or {}).items():
            if nbytes <= 0:
                continue  # the peer brought nothing back
            pipe.hincrbyfloat(traffic, f"{peer}:bytes", nbytes)
            pipe.hincrbyfloat(traffic, f"{peer}:seconds", seconds)
            pipe.hincrby(traffic, f"{peer}:pulls", 1)
            pipe.hset(traffic, f"{peer}:last", record.t)

    # the launcher's side ---------------------------------------------------------------------
    def read(self, after: Mapping[int, str], count: int) -> list[StreamEntry]:
        """Up to `count` entries per worker stream after the given ids (worker → id, '0-0' from
        the start), all streams in one round trip, in server order."""
        streams = {self.keys.events(w): entry_id for w, entry_id in after.items()}
        owner = {self.keys.events(w): w for w in after}
        raw = self._r.xread(streams, count=count)  # type: ignore[arg-type]
        out = []
        for stream, entries in cast(
            list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]], raw or []
        ):
            worker = owner[text(stream)]
            for entry_id, fields in entries:
                out.append(StreamEntry(worker, text(entry_id), fields.get(b"r")))
        return sorted(out, key=lambda e: e.order)

    def trim(self, upto: Mapping[int, str]) -> None:
        """Drop what is written (entries before each id; the last one stays, harmlessly)."""
        pipe = self._r.pipeline(transaction=False)
        for worker, entry_id in upto.items():
            if entry_id != "0-0":
                pipe.xtrim(self.keys.events(worker), minid=entry_id, approximate=False)
        pipe.execute()

    def show(self, records: Sequence[Record]) -> None:
        """Records the launcher accepted, for the dashboard: the run's tail, the evaluations."""
        if not records:
            return
        pipe = self._r.pipeline(transaction=False)
        for record in records:
            data = to_json(record)
            pipe.lpush(self.keys.tail, data)
            if isinstance(record, EvalRecord):
                pipe.lpush(self.keys.evals, data)
        pipe.ltrim(self.keys.tail, 0, TAIL - 1)
        pipe.ltrim(self.keys.evals, 0, RECENT - 1)
        pipe.execute()
