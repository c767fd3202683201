"""Sending a worker's slice task, through the run's own broker connection (never a process-wide
app setting: two runs in one process stay apart)."""

from __future__ import annotations

import contextlib
from typing import Any

from mpls_celery.runtime.keys import SLICE_TASK, slice_queue


class SliceSender:
    def __init__(self, run_id: str, broker_url: str, per_worker_queues: bool) -> None:
        self.run_id, self.broker_url, self.per_worker = run_id, broker_url, per_worker_queues
        self._connection: Any = None

    def send(self, worker: int, generation: int) -> None:
        from mpls_celery.runtime.backend.celery_app import app

        if self._connection is None:
            self._connection = app.connection_for_write(self.broker_url)
        app.send_task(
            SLICE_TASK,
            args=[self.run_id, worker, generation],
            queue=slice_queue(worker, self.per_worker),
            connection=self._connection,
            ignore_result=True,
        )

    def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):  # a dead broker cannot be released cleanly
                self._connection.release()
