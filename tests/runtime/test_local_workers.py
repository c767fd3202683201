"""`mpls up` supervises its Celery worker processes: one that exits is started again, up to a limit."""

import pytest

from mpls_celery.runtime.local_workers import MAX_RESTARTS, LocalWorkers

pytestmark = [pytest.mark.integration]


def test_an_exited_worker_is_started_again_until_the_limit(redis_url, tmp_path):
    workers = LocalWorkers(redis_url, tmp_path, 1, 1, "sup").start()
    try:
        for _ in range(MAX_RESTARTS):
            pull = workers.procs[1]
            pull.kill()
            pull.wait()
            assert workers.revive()
            assert workers.procs[1].pid != pull.pid and workers.procs[1].poll() is None
        workers.procs[1].kill()
        workers.procs[1].wait()
        assert not workers.revive()  # it keeps exiting: give up, the launcher ends the run
        assert workers.procs[0].poll() is None  # the other process was never touched
    finally:
        workers.stop()
