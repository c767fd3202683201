"""The dashboard's Redis source against real Redis servers."""

import pytest
import redis

from mpls_celery.runtime.backend.embedded_redis import EmbeddedRedis
from mpls_celery.runtime.options import RuntimeOptions
from mpls_celery.runtime.worker.node import NodeRuntime
from tests.runtime.helpers import make_context
from tui.sources import RedisSource

pytestmark = pytest.mark.integration


def test_versions_show_when_snapshots_live_in_a_per_host_redis(redis_url):
    """With MPLS_SNAPSHOT_REDIS_URL, heads live in the host's own Redis, not the central one
    the dashboard reads: the version column must still be filled."""
    central = redis.Redis.from_url(redis_url)
    with EmbeddedRedis() as host_redis:
        ctx = make_context(
            central,
            "per-host",
            RuntimeOptions(pull_deadline=0.2, link_speeds="achieved"),
            snapshot_url=host_redis.url,
        )
        store = ctx.store
        nodes = [NodeRuntime(ctx, w).resume() for w in range(3)]
        for node in nodes:
            node.iteration(lambda request, deadline: None)
            node.flush()  # its version and state are written by its publisher's thread
        assert central.get(store.keys.head(0)) is None, "heads are on the host"
        rows = RedisSource(central).fetch("per-host", 0).workers
    assert [row.version for row in rows] == [1, 1, 1]


def test_a_probe_shows_in_the_event_list_as_mbit_per_peer():
    from mpls_celery.telemetry.records import ProbeRecord
    from tui.model import event_line

    line = event_line(
        ProbeRecord("mpls", 3, 9.5, {0: [131072.0, 0.14, 4.0], 5: [131072.0, 0.28, 4.2]})
    )
    assert "w3" in line and "probe" in line and "0:7.5 5:3.7" in line
