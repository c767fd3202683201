import contextlib
from dataclasses import fields

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpls_celery.telemetry.records import (
    EvalRecord,
    IterationRecord,
    ProbeRecord,
    TelemetryError,
    parse_record,
    to_json,
)
from mpls_celery.telemetry.states import NodeState, RunStatus

ITERATION = IterationRecord("mpls", 2, 7, 1.5, 30, 0.42, {0: [1, 3], 5: [0]}, 1e5, 0.2, 0.05, 3)
EVAL = EvalRecord("appg", 10.0, 99, 0.8, 0.82, 0.6, [0.8, 0.8])
PROBE = ProbeRecord("netmax", 4, 6.25, {0: [131072.0, 0.28, 6.0], 2: [131072.0, 0.14, 5.8]})


@pytest.mark.parametrize("record", [ITERATION, EVAL, PROBE])
def test_round_trip(record):
    assert parse_record(to_json(record)) == record


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300) | json_values.map(orjson.dumps))
def test_parser_never_crashes_on_garbage(data):
    with contextlib.suppress(TelemetryError):
        parse_record(data)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(orjson.loads(to_json(ITERATION)))), json_values)
def test_a_mangled_field_is_refused_or_still_a_record(field, value):
    data = orjson.loads(to_json(ITERATION))
    data[field] = value
    try:
        record = parse_record(orjson.dumps(data))
    except TelemetryError:
        return
    assert isinstance(record, IterationRecord | EvalRecord)


_NAMES = st.sampled_from(sorted({f.name for f in fields(NodeState)} | {"state", "reason", "x"}))


_VALUES = st.one_of(  # what each field can hold (numbers, JSON, a state), and garbage
    st.binary(max_size=12),
    st.integers(0, 10**6).map(lambda i: str(i).encode()),
    st.sampled_from([b"running", b"idle", b"1.5", b'"host"', b"null"]),
)


@settings(max_examples=200)
@given(st.dictionaries(_NAMES.map(str.encode), _VALUES, max_size=8))
def test_state_and_status_hashes_never_crash_on_any_field(raw):
    """Either hash read with any field of either (or garbage in it): refused or kept, not a crash."""
    NodeState.from_fields(raw)
    RunStatus.from_fields(raw)
