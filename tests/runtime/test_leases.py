"""A slice's check before each iteration — does the run still run, is the lease still its own —
answered by its lease keeper (one round trip renews and checks, every quarter second), and asked
again when the keeper's answer is stale, as after a freeze."""

import time

import pytest

from mpls_celery.runtime.state.leases import LeaseKeeper, Renewal
from mpls_celery.telemetry.states import RunState


@pytest.fixture
def asked(ctx, monkeypatch) -> list[Renewal]:
    """The answers Redis gave, one per round trip."""
    answers: list[Renewal] = []
    real = ctx.store.leases.renew_and_check

    def counted(*args: object) -> Renewal:
        answers.append(real(*args))  # type: ignore[arg-type]
        return answers[-1]

    monkeypatch.setattr(ctx.store.leases, "renew_and_check", counted)
    return answers


def test_one_round_trip_renews_a_lease_still_its_own_and_says_whether_the_run_runs(ctx, raw):
    leases, run = ctx.store.leases, ctx.store.run
    run.set_status(RunState.RUNNING)
    assert leases.acquire(0, "mine", 1.0)
    assert leases.renew_and_check(0, "mine", 60.0) is Renewal.RENEWED
    assert leases.ttl(0) > 30  # renewed to the new length
    assert leases.renew_and_check(0, "theirs", 1.0) is Renewal.LOST
    assert leases.holder(0) == "mine" and leases.ttl(0) > 30
    run.set_status(RunState.STOPPING)
    assert leases.renew_and_check(0, "mine", 600.0) is Renewal.RUN_STOPPED
    assert leases.ttl(0) > 300  # still its own: held while the slice winds down
    raw.delete(ctx.store.keys.status)  # a run whose status is gone does not run either
    assert leases.renew_and_check(0, "mine", 1.0) is Renewal.RUN_STOPPED
    raw.delete(ctx.store.keys.lease(0))
    run.set_status(RunState.RUNNING)
    assert leases.renew_and_check(0, "mine", 1.0) is Renewal.LOST  # lapsed: no longer its own


def test_the_keeper_answers_from_its_last_check_and_asks_again_once_that_is_stale(ctx, raw, asked):
    ctx.store.run.set_status(RunState.RUNNING)
    assert ctx.store.leases.acquire(0, "mine", 3.0)
    now = [0.0]
    keeper = LeaseKeeper(ctx.store.leases, 0, "mine", 3.0, clock=lambda: now[0])  # not started
    assert keeper.check() is Renewal.RENEWED and len(asked) == 1  # nothing known yet: asked
    now[0] = 2 * keeper.period
    assert keeper.check() is Renewal.RENEWED and len(asked) == 1  # fresh: no round trip
    ctx.store.run.set_status(RunState.STOPPING)
    now[0] = 2 * keeper.period + 0.01  # stale, as after a freeze
    assert keeper.check() is Renewal.RUN_STOPPED and len(asked) == 2
    ctx.store.run.set_status(RunState.RUNNING)
    raw.set(ctx.store.keys.lease(0), "theirs")  # taken over while this slice was frozen
    now[0] += 1.0
    assert keeper.check() is Renewal.LOST and keeper.lost.is_set()
    assert keeper.check() is Renewal.LOST and len(asked) == 3  # lost for good: not asked again


def test_the_keepers_thread_renews_the_lease_and_brings_a_stop_to_the_slice(ctx, asked):
    ctx.store.run.set_status(RunState.RUNNING)
    assert ctx.store.leases.acquire(0, "mine", 1.5)
    with LeaseKeeper(ctx.store.leases, 0, "mine", 1.5) as keeper:  # a check every 0.25 s
        assert keeper.check() is Renewal.RENEWED and len(asked) == 1
        time.sleep(2.0)  # longer than the lease: only the keeper's renewals kept it
        assert ctx.store.leases.holder(0) == "mine" and len(asked) >= 3
        ctx.store.run.set_status(RunState.STOPPING)
        deadline = time.monotonic() + 3.0
        while keeper.check() is not Renewal.RUN_STOPPED and time.monotonic() < deadline:
            time.sleep(0.01)
        assert keeper.check() is Renewal.RUN_STOPPED
    assert ctx.store.leases.holder(0) is None  # released at the end of the block
