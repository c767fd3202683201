"""SIGTERM (timeout, systemd, docker stop, a batch scheduler's cancel) ends a command as Ctrl-C
does: the main thread gets an exception to clean up after — `mpls up` stops its run's workers and
writes the summary, `mpls sim` stops its comparison's worker processes — instead of the process
dying at once and leaving its children running."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


class Terminated(Exception):
    """SIGTERM, raised in the main thread while `sigterm_raises` is in force."""


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """Only the main thread can take signals; elsewhere (a notebook's worker thread) a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_terminated(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends at once
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
