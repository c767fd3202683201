"""The node's receiver: its threads never hold up the next iteration or the process's exit."""

import threading

import pytest

from mpls_celery.runtime.worker.receiver import Receiver


def test_a_wait_given_up_does_not_hold_up_the_next_iterations_pull():
    receiver = Receiver()
    released = threading.Event()
    stuck = receiver.submit(lambda: released.wait(30) and None)  # a wait its node gave up on
    try:
        assert receiver.submit(lambda: None).result(timeout=5) is None
        assert not stuck.done()
    finally:
        released.set()
        receiver.close()
    assert all(t.daemon for t in threading.enumerate() if t.name.startswith("mpls-receiver"))


def test_what_a_receive_raises_is_raised_where_the_node_takes_the_result():
    receiver = Receiver()

    def broken() -> None:
        raise ConnectionError("redis went away")

    try:
        with pytest.raises(ConnectionError, match="went away"):
            receiver.submit(broken).result(timeout=5)
    finally:
        receiver.close()
    assert receiver.stop.is_set()  # what ends a mailbox wait still in progress
