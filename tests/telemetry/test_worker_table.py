"""What the worker tables call a worker, from its state hash and its heartbeat's age."""

from mpls_celery.telemetry.states import NodeState, WorkerState
from mpls_celery.telemetry.worker_table import liveness


def test_a_worker_whose_last_slice_failed_at_this_iteration_is_retrying():
    assert liveness(NodeState(state=WorkerState.IDLE, k=5), 0.5, 10, 30) == "idle"
    failed_here = NodeState(state=WorkerState.IDLE, k=5, failed_at=5, failures=2)
    assert liveness(failed_here, 0.5, 10, 30) == "retrying"
    got_further = NodeState(state=WorkerState.TRAINING, k=6, failed_at=5, failures=2)
    assert liveness(got_further, 0.5, 10, 30) == "training"


def test_silence_and_an_end_come_first():
    retrying = NodeState(state=WorkerState.IDLE, k=5, failed_at=5, failures=1)
    assert liveness(retrying, 12.0, 10, 30) == "stale"
    assert liveness(retrying, 31.0, 10, 30) == "dead"
    failed = NodeState(state=WorkerState.FAILED, k=5, failed_at=5, failures=3)
    assert liveness(failed, 31.0, 10, 30) == "failed"


def test_a_narrow_terminal_squeezes_the_numbers_never_a_workers_state():
    from rich.console import Console

    from mpls_celery.telemetry.worker_table import node_rows, rich_worker_table

    nodes = [NodeState(state=WorkerState.TRAINING, k=7), NodeState(state=WorkerState.FINISHED, k=9)]
    console = Console(width=50, record=True)
    console.print(rich_worker_table(node_rows(nodes, now=0.0, dead_after=30.0)))
    shown = console.export_text()
    assert "│ training │" in shown and "│ finished │" in shown, shown
