"""A worker's own accuracy (the "acc" of its state, the dashboard's column), measured in a thread of
its own beside training, so that a due evaluation never holds back the next version: it took a
LeNet-5 node ~19 ms every tenth iteration, on the version's path, when the publisher ran it. The
run's accuracy curve is the launcher's (launch/evaluation.py); this is telemetry, so the newest
state wins — one handed over while another waits replaces it — and `flush` waits for the last.
For the same reason a due evaluation is skipped within MIN_INTERVAL of the last one accepted (the
last of a run never is): every tenth iteration of a 5 ms step was twenty evaluations a second,
a fifth of a LeNet-5 step of CPU per iteration, for a column that refreshes twice a second."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable

import torch

State = dict[str, torch.Tensor]
# This thread's nice value on Linux: where cores are short, training and publishing come first
# (bench_node, 1 worker: the mean of the node's own path 0.52-0.56 ms with it, 0.60-0.74 without).
NICE = 10
MIN_INTERVAL = 1.0  # seconds between evaluations accepted (the dashboard polls every 0.5 s)


class SelfEvaluation:
    def __init__(
        self,
        evaluate: Callable[[State], float],
        report: Callable[[float], None],
        min_interval: float = MIN_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._evaluate, self._report = evaluate, report
        self._min_interval, self._clock = min_interval, clock
        self._accepted_at = -float("inf")
        self._changed = threading.Condition()
        self._pending: State | None = None
        self._busy = False
        self._closing = False
        self._failure: BaseException | None = None
        self._thread: threading.Thread | None = None

    def submit(self, state: State, last: bool = False) -> None:
        """Evaluate `state` (never changed afterwards) when the thread is free; skipped within
        the minimum interval of the last one accepted, unless it is the `last` of the run."""
        self.raise_failure()
        now = self._clock()
        if not last and now - self._accepted_at < self._min_interval:
            return
        self._accepted_at = now
        with self._changed:
            self._pending = state
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True, name="mpls-eval")
                self._thread.start()
            self._changed.notify_all()

    def _run(self) -> None:
        _yield_to_training()
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._pending is not None or self._closing)
                if self._pending is None:
                    return
                state, self._pending, self._busy = self._pending, None, True
            try:
                if self._failure is None:
                    self._report(self._evaluate(state))
            except BaseException as exc:  # handed to the node's thread, raised there
                self._failure = exc
            finally:
                with self._changed:
                    self._busy = False
                    self._changed.notify_all()

    def flush(self) -> None:
        """Wait until the last state handed over is evaluated and reported; raise a failure."""
        with self._changed:
            self._changed.wait_for(lambda: self._pending is None and not self._busy)
        self.raise_failure()

    def raise_failure(self) -> None:
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure

    def close(self) -> None:
        """Stop the thread; a state not yet started is dropped (a closed node reports nothing)."""
        with self._changed:
            self._closing, self._pending = True, None
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None


def _yield_to_training() -> None:
    """Lower this thread's CPU priority (Linux schedules threads by their own nice value)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)
