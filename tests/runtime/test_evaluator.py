"""The launcher's evaluation reads each head and its layers together and never scores a failed
read as accuracy 0 (issue: false zeros in clean runs)."""

import threading

import pytest

from mpls_celery.runtime.launch.evaluation import Evaluator
from mpls_celery.runtime.state.decode import Refusals
from mpls_celery.telemetry.states import NodeState
from tests.runtime.helpers import publish_all

pytestmark = pytest.mark.integration


def evaluator(ctx, refusals: Refusals | None = None) -> Evaluator:
    return Evaluator(ctx.store, ctx.experiment, ctx.layout, 50, refusals or Refusals())


NODES = [NodeState(k=0, loss=1.0)] * 3


def test_a_worker_whose_head_cannot_be_read_is_left_out_not_scored_zero(ctx, raw):
    publish_all(ctx)
    raw.delete(ctx.store.keys.layer(2, 1, 0))  # worker 2's version 0 loses a layer
    raw.set(ctx.store.keys.head(1), b"99999999999")  # worker 1's head is no head at all
    refusals = Refusals()
    record = evaluator(ctx, refusals).evaluate(1.0, NODES)
    assert record is not None
    assert record.worker_acc[1] is None and record.worker_acc[2] is None
    assert record.mean_acc == record.worker_acc[0]
    assert refusals.counts["heads"] == 2


@pytest.mark.slow
def test_evaluations_never_miss_a_head_while_versions_are_collected(ctx):
    """A worker publishes as fast as it can with two kept versions; a separate head read and
    layer load would find the version collected in between."""
    nodes = publish_all(ctx)
    busy = nodes[0]
    stop = threading.Event()

    def publish_forever() -> None:
        while not stop.is_set():
            assert busy._publish(busy.version + 1, busy.progress)

    writer = threading.Thread(target=publish_forever, daemon=True)
    writer.start()
    try:
        records = [evaluator(ctx).evaluate(1.0, NODES) for _ in range(40)]
    finally:
        stop.set()
        writer.join()
    assert busy.version > 40, "the writer must have raced the evaluations"
    assert all(r is not None and None not in r.worker_acc for r in records)
