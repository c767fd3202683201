"""Jobs a node runs beside its training: daemon threads on one queue, each job's result (or what
it raised) in a Future that the node's thread takes when it needs it. Daemons, as the
publisher's: a job in progress never holds up the process's exit."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")
Job = tuple[Callable[[], Any], "Future[Any]"]


class Beside:
    def __init__(self, name: str, threads: int = 1) -> None:
        self.name, self.threads = name, threads
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._running: list[threading.Thread] = []

    def submit(self, job: Callable[[], T]) -> Future[T]:
        if not self._running:
            self._running = [
                threading.Thread(target=self._run, daemon=True, name=f"{self.name}-{i}")
                for i in range(self.threads)
            ]
            for thread in self._running:
                thread.start()
        future: Future[T] = Future()
        self._jobs.put((job, future))
        return future

    def _run(self) -> None:
        while (item := self._jobs.get()) is not None:
            job, future = item
            try:
                future.set_result(job())
            except BaseException as exc:  # raised in the node's thread, by future.result()
                future.set_exception(exc)

    def close(self, wait: float = 0.0) -> None:
        """End the threads once their jobs are done; `wait`: seconds to wait for that."""
        running, self._running = self._running, []
        for _ in running:
            self._jobs.put(None)
        for thread in running if wait else ():
            thread.join(wait)
