"""The launcher's telemetry sink: every worker's stream drained into the run directory's
metrics.jsonl — validated, exactly once, in server order — with the launcher's own evaluations
between them. What it has written is trimmed from the streams; where it stands (the last entry
per stream) is kept beside metrics.jsonl, so a launcher that re-attaches after a crash goes on
from there and from the file itself, never losing or doubling a record.

A record that fails validation (another worker's name, a peer outside the run, a step back or
a jump in k) is refused and counted, never written. A disk that cannot take the file ends the
run (RunAborted) with one line that says which file and why."""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import orjson

from mpls_celery.errors import InvalidState, RunAborted
from mpls_celery.runtime.state.decode import (
    MAX_RECORD_STEP,
    RecordBounds,
    Refusals,
    decode_stream_record,
)
from mpls_celery.runtime.state.events import StreamEntry
from mpls_celery.runtime.store import RunStore
from mpls_celery.telemetry.records import IterationRecord, ProbeRecord, Record
from mpls_celery.telemetry.rundir import METRICS, append_metrics, read_metrics

log = logging.getLogger(__name__)
CURSOR = ".sink-cursor.json"
BATCH = 5_000  # entries per stream per read


class TelemetrySink:
    def __init__(
        self, store: RunStore, run_dir: Path, bounds: RecordBounds, refusals: Refusals
    ) -> None:
        self.store, self.run_dir, self.bounds = store, run_dir, bounds
        self.refusals = refusals
        self.path = run_dir / METRICS
        self.after = {w: "0-0" for w in range(bounds.workers)}
        self.last_k: dict[int, int] = {}  # per worker: the last iteration written
        self.probes: set[tuple[int, float]] = set()  # (worker, t) of the probe records written
        self.written = 0

    def resume(self) -> TelemetrySink:
        """Go on from what the run directory holds: its cursor, and the iterations already in
        metrics.jsonl (a partial last line, which a crash can leave, is cut off first)."""
        if self.path.is_file():  # a regular file (a device would read forever)
            _cut_partial_line(self.path)
            for record in read_metrics(self.run_dir):
                if isinstance(record, IterationRecord):
                    self.last_k[record.worker] = max(record.k, self.last_k.get(record.worker, -1))
                elif isinstance(record, ProbeRecord):
                    self.probes.add((record.worker, record.t))
                self.written += 1
        cursor = self.run_dir / CURSOR
        if cursor.exists():
            try:
                saved = orjson.loads(cursor.read_bytes())
                self.after |= {int(w): str(i) for w, i in saved.items() if int(w) in self.after}
            except (orjson.JSONDecodeError, ValueError, AttributeError, OSError):
                log.warning("%s is unreadable: reading every stream from its start", cursor)
        return self

    def drain(self, own: Sequence[Record] = ()) -> list[Record]:
        """Append what arrived since the last call (and `own`, the launcher's records, after
        it); the records written."""
        accepted: list[Record] = []
        while True:
            entries = self.store.events.read(self.after, count=BATCH)
            accepted += [r for r in map(self._accept, entries) if r is not None]
            for entry in entries:
                if entry.worker is not None:
                    self.after[entry.worker] = entry.entry_id
            if len(entries) < BATCH:
                break
        accepted += own
        self._write(accepted)
        if accepted or any(i != "0-0" for i in self.after.values()):
            self._save_cursor()
            self.store.events.trim(self.after)
        self.store.events.show(accepted)
        return accepted

    def _accept(self, entry: StreamEntry) -> Record | None:
        try:
            if entry.raw is None:
                raise InvalidState("a stream entry without a record")
            record = decode_stream_record(entry.raw, entry.worker, self.bounds)
        except InvalidState as exc:
            self.refusals.add("records", str(exc))
            log.warning("refused a record from worker %s's stream: %s", entry.worker, exc)
            return None
        if isinstance(record, ProbeRecord):
            if (record.worker, record.t) in self.probes:
                return None  # written already
            self.probes.add((record.worker, record.t))
            return record
        if not isinstance(record, IterationRecord):
            return record
        last = self.last_k.get(record.worker, -1)
        if record.k <= last:
            return None  # written already (a slice re-emitted it, or the cursor lagged)
        if record.k > last + MAX_RECORD_STEP:
            self.refusals.add(
                "records", f"worker {record.worker} jumped from k={last} to {record.k}"
            )
            return None
        self.last_k[record.worker] = record.k
        return record

    def _write(self, records: Sequence[Record]) -> None:
        if not records:
            return
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            append_metrics(self.path, records)
        except OSError as exc:
            raise RunAborted(disk_problem(self.path, exc)) from None
        self.written += len(records)

    def _save_cursor(self) -> None:
        cursor = self.run_dir / CURSOR
        temporary = cursor.with_suffix(".tmp")
        try:
            temporary.write_bytes(orjson.dumps({str(w): i for w, i in self.after.items()}))
            os.replace(temporary, cursor)
        except OSError as exc:
            raise RunAborted(disk_problem(cursor, exc)) from None


def disk_problem(path: Path, exc: OSError) -> str:
    """One line naming what ran out (or failed) and where."""
    what = {errno.ENOSPC: "disk full", errno.EDQUOT: "disk quota exceeded"}.get(
        exc.errno or 0, "cannot write"
    )
    return f"{what}: {path}: {exc.strerror or exc}"


def _cut_partial_line(path: Path) -> None:
    """A crash mid-append can leave a last line without its newline: drop it (its record is
    still in the stream, or was never complete)."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        log.warning("%s: dropping a partial last line (%d bytes)", path, len(data) - cut)
        with path.open("r+b") as handle:
            handle.truncate(cut)
