"""Fixtures of the runtime tests: a run context on the test Redis, without Celery."""

import pytest
import redis

from mpls_celery.runtime.context import RunContext
from mpls_celery.runtime.options import RuntimeOptions
from tests.runtime.helpers import make_context


@pytest.fixture
def ctx(redis_url) -> RunContext:
    return make_context(redis.Redis.from_url(redis_url), "unit", RuntimeOptions(peer_timeout=2.0))
