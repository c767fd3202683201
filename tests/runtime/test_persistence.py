"""Redis restarted mid-run (AOF on): no published version is lost, the run pauses while Redis is
away and then completes — launcher, Celery workers and slices all reconnect by themselves."""

import time

import pytest

from mpls_celery.runtime.backend.embedded_redis import EmbeddedRedis
from mpls_celery.runtime.worker.context import RunContext
from mpls_celery.runtime.worker.model_io import load_version
from tests.runtime.helpers import start_run

pytestmark = [pytest.mark.integration, pytest.mark.slow]
WORKERS = [0, 1, 2]


def test_redis_restart_with_aof_loses_no_version_and_the_run_resumes(tmp_path):
    data = tmp_path / "aof"
    server = EmbeddedRedis(password="pw", data_dir=data, appendonly=True).start()
    port = server.port
    run = start_run(server.url, tmp_path, iterations=40, slice_seconds=2.0, lease_seconds=3.0)
    try:
        store = run.store
        run.wait_until(
            lambda: min(h.version for h in store.snapshots.heads(WORKERS)) >= 5,
            what="every worker at v5",
        )
        before = [h.version for h in store.snapshots.heads(WORKERS)]
        server.stop()  # SIGTERM: Redis writes its AOF out before it exits
        time.sleep(3.0)  # slices and the launcher meet a dead Redis meanwhile
        server = EmbeddedRedis(password="pw", data_dir=data, appendonly=True, port=port).start()
        after = [h.version for h in store.snapshots.heads(WORKERS)]
        assert all(a >= b for a, b in zip(after, before, strict=True)), (before, after)

        summary = run.join(timeout=300)
        assert [w["iteration"] for w in summary["workers"]] == [40, 40, 40]
        ctx = RunContext.load(store)  # the run's config survived too
        for worker, head in zip(WORKERS, store.snapshots.heads(WORKERS), strict=True):
            assert head is not None and head.version == 40
            model = ctx.experiment.new_model()  # every layer present and verified, or it raises
            load_version(store, ctx.layout, ctx.experiment.layers, worker, head.version, model)
    finally:
        server.stop()
