"""A node's writes to Redis, off its critical path: one background thread that publishes its
versions and trained copies, emits its records and updates its state, in the order they were
asked for — while the node trains on. At most one version is in flight: before the next one is
handed over, the node waits for the previous one (`wait`), so a kill loses at most the iteration
in flight, as before. A write that fails (a version published elsewhere: StaleNode) is raised on
the node's next call, and `flush` (the end of a slice) waits for everything."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

Job = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any], threading.Event]


class Publisher:
    def __init__(self) -> None:
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._last: threading.Event | None = None  # one thread, in order: the last done, all done
        self._failure: BaseException | None = None
        self._thread: threading.Thread | None = None

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> threading.Event:
        """Queue a write; the event is set once it is done (or failed)."""
        self.raise_failure()
        done = self._last = threading.Event()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True, name="mpls-publisher")
            self._thread.start()
        self._jobs.put((fn, args, kwargs, done))
        return done

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            fn, args, kwargs, done = job
            try:
                if self._failure is None:  # after a failure, nothing more is written
                    fn(*args, **kwargs)
            except BaseException as exc:  # handed to the node's thread, raised there
                self._failure = exc
            finally:
                done.set()

    def wait(self, job: threading.Event | None) -> None:
        """Wait for one write (and those before it); raise the first that failed."""
        if job is not None:
            job.wait()
        self.raise_failure()

    def flush(self) -> None:
        """Wait until every write asked for so far is done; raise the first that failed."""
        self.wait(self._last)

    def raise_failure(self) -> None:
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure

    def close(self) -> None:
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join(timeout=30)
            self._thread = None
