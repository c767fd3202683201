"""Every byte read from Redis is untrusted input: a head that is no head, a head claiming a version
its worker never reached, a record written in another worker's name, garbage in a state hash.
Each is refused, counted and reported — never a crash of the launcher or a slice, never adopted
as progress — and the run completes. (In a --secure run a worker's credentials may write all of
its own keys, so one compromised worker could write exactly these.)"""

from __future__ import annotations

from dataclasses import replace

import orjson
import pytest

from mpls_celery.errors import InvalidState
from mpls_celery.runtime.state.decode import Head, RecordBounds, decode_stream_record
from mpls_celery.runtime.store import RunStore
from mpls_celery.telemetry.completeness import account_iterations
from mpls_celery.telemetry.records import IterationRecord, ProbeRecord, to_json
from mpls_celery.telemetry.states import NodeState, WorkerState
from tests.runtime.helpers import start_run

RECORD = IterationRecord("mpls", 1, 3, 2.5, 4, 1.9, {0: [0, 1]}, 2e5, 0.1, 0.05, 2)
BOUNDS = RecordBounds(workers=3, layers=2, algorithm="mpls", max_pull_bytes=1e7)


@pytest.mark.parametrize(
    "raw",
    [b"99999999999", b"not json", b"[]", b'{"version": "7", "g": [], "t": 0}',
     b'{"version": -1, "g": [], "t": 0}', b'{"version": 3, "g": [NaN], "t": 0}',
     b'{"version": 1e300, "g": [], "t": 0}', b'{"version": 3, "t": 0}'],
)  # fmt: skip
def test_a_head_that_is_no_head_is_refused(raw):
    with pytest.raises(InvalidState, match="worker 4's head"):
        Head.parse(4, raw)


def test_a_head_may_lead_the_recorded_iterations_by_one_version_at_most():
    head = Head.parse(1, b'{"version": 12, "g": [0.5], "t": 3.0}')
    head.check_lead(recorded=11)  # killed between its publish and its record: fine
    with pytest.raises(InvalidState, match="claims version 12 after 10"):
        head.check_lead(recorded=10)


@pytest.mark.parametrize(
    "forged, why",
    [
        (replace(RECORD, worker=0), "in worker 0's name"),
        (replace(RECORD, bytes_pulled=1e12), "more than a whole pull"),
        (replace(RECORD, plan={7: [0]}), "peer 7"),
        (replace(RECORD, plan={0: [5]}), "layers"),
        (replace(RECORD, epoch=99), "epoch"),
        (replace(RECORD, algo="appg"), "algorithm"),
        (replace(RECORD, t=float("inf")), "malformed"),  # JSON has no inf: it arrives as null
        (ProbeRecord("mpls", 0, 1.0, {2: [1.0, 0.1, 0.0]}), "in worker 0's name"),
    ],
)
def test_a_record_claiming_what_its_writer_may_not_is_refused(forged, why):
    assert decode_stream_record(to_json(RECORD), 1, BOUNDS) == RECORD
    with pytest.raises(InvalidState, match=why):
        decode_stream_record(to_json(forged), 1, BOUNDS)


def test_garbage_in_a_state_hash_is_dropped_field_by_field():
    state, refused = NodeState.from_fields(
        {b"state": b"training", b"k": b"banana", b"heartbeat": b"1e999", b"acc": b"7",
         b"loss": b"null", b"store": b"x" * 5000, b"surprise": b"1", b"version": b"12"}
    )  # fmt: skip
    assert state.state is WorkerState.TRAINING and state.version == 12 and state.loss is None
    assert state.k == 0 and state.heartbeat is None and state.acc is None and state.store == ""
    assert sorted(refused) == ["acc", "heartbeat", "k", "store", "surprise"]


@pytest.mark.integration
def test_heads_read_together_tell_a_missing_head_from_one_that_is_no_head(raw):
    store = RunStore(raw, "heads")
    raw.set(store.keys.head(0), b'{"version": 3, "g": [0.5], "t": 1.0}')
    raw.hset(store.keys.head(2), "version", 4)  # a head of the wrong Redis type
    raw.set(store.keys.head(3), b"not json")
    read = store.snapshots.heads([0, 1, 2, 3])
    assert isinstance(read[0], Head) and read[0].version == 3
    assert read[1] is None, "nothing published yet is no problem"
    assert isinstance(read[2], InvalidState) and "worker 2's head" in str(read[2])
    assert isinstance(read[3], InvalidState) and "worker 3's head" in str(read[3])


@pytest.mark.integration
@pytest.mark.slow
def test_a_run_survives_hostile_heads_forged_records_and_garbage_state(redis_url, raw, tmp_path):
    run = start_run(redis_url, tmp_path, iterations=60, slice_seconds=2.0)
    keys = run.store.keys
    run.wait_until(lambda: min(run.store.nodes.state(w).k for w in range(3)) >= 5, what="k >= 5")
    raw.set(keys.head(1), b"99999999999")  # no head at all
    raw.set(keys.head(2), orjson.dumps({"version": 10**12, "g": [0.0, 0.0], "t": 1.0}))
    forged = IterationRecord("mpls", 0, 99999, 9.0, 100000, 0.1, {}, 1e12, 0.0, 0.0, 2)
    raw.xadd(keys.events(1), {"r": to_json(forged)})  # worker 1 speaking for worker 0
    raw.xadd(keys.events(1), {"r": b"\x00not a record"})
    raw.hset(keys.state(0), mapping={"heartbeat": "soon", "acc": "[1, 2]"})
    summary = run.join(timeout=300)

    assert summary["reason"] == "every worker finished" and not summary["failed"]
    assert [w["iteration"] for w in summary["workers"]] == [60, 60, 60]
    assert "head refused" in (summary["workers"][1]["recovered"] or "")
    assert "head refused" in (summary["workers"][2]["recovered"] or "")
    assert run.store.snapshots.head(2).version == 60, "the forged version was never adopted"
    account = account_iterations(run.iterations(), 3, 60)
    assert account.exactly_once
    counts = summary["refused"]["counts"]
    assert counts["records"] >= 2 and counts.get("heads", 0) + counts["read by workers"] >= 2
    assert summary["final_mean_acc"] > 0.3
