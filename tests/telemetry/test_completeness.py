"""Every local iteration recorded exactly once: a doubled, a lost and an extra record are seen."""

from dataclasses import replace

from mpls_celery.telemetry.completeness import account_iterations
from mpls_celery.telemetry.records import EvalRecord, IterationRecord

RECORD = IterationRecord("mpls", 0, 0, 1.0, 1, 0.5, {}, 0.0, 0.0, 0.01, 1)


def records(pairs):
    return [replace(RECORD, worker=w, k=k) for w, k in pairs]


def test_a_complete_run_is_each_once_and_other_records_do_not_count():
    every = [(w, k) for w in range(2) for k in range(3)]
    account = account_iterations(
        [*records(every), EvalRecord("mpls", 1.0, 10, 0.5, 0.5, 1.0)], 2, 3
    )
    assert account.exactly_once and account.recorded == account.expected == 6


def test_doubled_lost_and_extra_iterations_are_named():
    pairs = [(0, 0), (0, 1), (0, 1), (1, 0), (1, 1), (1, 2), (2, 0)]
    account = account_iterations(records(pairs), 2, 3)
    assert account.repeated == [(0, 1)] and account.missing == [(0, 2)]
    assert not account.exactly_once and account.recorded == 6


def test_an_iteration_beyond_the_expected_ones_is_not_exactly_once():
    every = [(w, k) for w in range(2) for k in range(3)]
    account = account_iterations(records([*every, (0, 3)]), 2, 3)
    assert not account.repeated and not account.missing and not account.exactly_once
