"""Fixtures of the runtime tests: a run context on the test Redis, without Celery."""

import time

import pytest
import redis

from mpls_celery.runtime.context import RunContext
from mpls_celery.runtime.layout import layout_of, layout_to_json
from mpls_celery.runtime.options import RuntimeOptions
from mpls_celery.runtime.store import RunStore
from tests.runtime.helpers import SMALL


@pytest.fixture
def ctx(redis_url) -> RunContext:
    store = RunStore(redis.Redis.from_url(redis_url), "unit")
    context = RunContext(store, SMALL, RuntimeOptions(peer_timeout=2.0), [], time.time())
    exp = context.experiment
    context.layout = layout_of(exp.layers, exp.new_model().state_dict())
    store.create(
        {
            "run": SMALL.model_dump(mode="json"),
            "options": {},
            "layout": layout_to_json(context.layout),
        }
    )
    return context
