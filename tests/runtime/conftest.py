"""Fixtures of the runtime tests: a run context on the test Redis, without Celery."""

from collections.abc import Iterator

import pytest
import redis

from mpls_celery.runtime.options import RuntimeOptions
from mpls_celery.runtime.worker.context import RunContext
from tests.runtime.helpers import make_context
from tests.runtime.processes import stop_leftover_launchers


@pytest.fixture
def ctx(redis_url) -> RunContext:
    """Tests drive single nodes by hand: a start-up round of probes would wait for workers that
    never run, so these nodes plan with achieved speeds (runs started whole probe: test_run)."""
    options = RuntimeOptions(peer_timeout=2.0, link_speeds="achieved")
    return make_context(redis.Redis.from_url(redis_url), "unit", options)


@pytest.fixture
def raw(redis_url) -> redis.Redis:
    """The test's own hands on Redis, as a fault or an intruder would have them."""
    return redis.Redis.from_url(redis_url)


@pytest.fixture(autouse=True)
def _no_launcher_outlives_its_test() -> Iterator[None]:
    yield
    stop_leftover_launchers()
