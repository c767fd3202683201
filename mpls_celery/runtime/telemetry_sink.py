"""The launcher's telemetry sink: every record in the run's event stream (iterations from the
workers, evaluations from the launcher) is appended to the run directory's metrics.jsonl, once,
in stream order."""

from __future__ import annotations

from pathlib import Path

from mpls_celery.runtime.store import RunStore
from mpls_celery.telemetry.rundir import METRICS, append_metrics

BATCH = 10_000


class TelemetrySink:
    def __init__(self, store: RunStore, run_dir: Path) -> None:
        self.store, self.path = store, run_dir / METRICS
        self._after = "0-0"

    def drain(self) -> int:
        """Append what arrived since the last call; the number of records written."""
        written = 0
        while True:
            records, self._after = self.store.read_events(self._after, count=BATCH)
            append_metrics(self.path, records)
            written += len(records)
            if len(records) < BATCH:
                return written
