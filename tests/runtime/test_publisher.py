"""The node's publisher: writes run in order off the caller's thread, `flush` waits for all of
them, and a failed write is raised in the caller's thread with nothing written after it."""

import threading
import time

import pytest

from mpls_celery.errors import StaleNode
from mpls_celery.runtime.worker.publisher import Publisher


def test_writes_run_in_order_and_flush_waits_for_all():
    publisher, done = Publisher(), []
    gate = threading.Event()
    publisher.submit(gate.wait)
    for i in range(5):
        publisher.submit(lambda i=i: (time.sleep(0.01), done.append(i)))
    assert done == []  # the caller is not held up by them
    gate.set()
    publisher.flush()
    assert done == [0, 1, 2, 3, 4]
    publisher.close()


def test_a_failed_write_is_raised_once_and_nothing_after_it_is_written():
    publisher, done = Publisher(), []

    def stale() -> None:
        raise StaleNode("version 3 was published elsewhere")

    publisher.submit(stale)
    later = publisher.submit(done.append, "after")
    with pytest.raises(StaleNode):
        publisher.wait(later)
    assert done == []
    publisher.flush()  # raised once: the node decides what comes next
    publisher.close()
