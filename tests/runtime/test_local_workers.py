"""`mpls up` supervises its Celery worker processes: one that exits is started again — up to a
limit when it crashes, for free while Redis is away — and a re-attaching launcher adopts the live
ones by pid."""

import pytest

from mpls_celery.runtime.backend.pids import process_exists
from mpls_celery.runtime.launch.processes import MAX_RESTARTS, CeleryProcesses

pytestmark = [pytest.mark.integration]


def kill(processes: CeleryProcesses, i: int) -> int:
    proc = processes.procs[i]
    assert proc is not None
    proc.kill()
    proc.wait()
    return proc.pid


def test_an_exited_worker_is_started_again_until_the_limit(redis_url, tmp_path):
    processes = CeleryProcesses(redis_url, tmp_path, 1, 1, "sup").start()
    try:
        old = kill(processes, 1)
        assert processes.revive(free=True) and processes.restarts == 0  # an outage: no charge
        assert processes.pids[1] != old and process_exists(processes.pids[1])
        for _ in range(MAX_RESTARTS):
            old = kill(processes, 1)
            assert processes.revive()
            assert processes.pids[1] != old and process_exists(processes.pids[1])
        kill(processes, 1)
        assert not processes.revive()  # it keeps exiting: give up, the launcher ends the run
        assert process_exists(processes.pids[0])  # the other process was never touched
    finally:
        processes.stop()


def test_a_new_launcher_adopts_live_processes_and_stops_them_by_pid(redis_url, tmp_path):
    first = CeleryProcesses(redis_url, tmp_path, 1, 1, "adopt").start()
    pids = list(first.pids)
    kill(first, 1)  # one of them died with its launcher
    second = CeleryProcesses(redis_url, tmp_path, 1, 1, "adopt").start(adopt=pids)
    try:
        assert second.pids[0] == pids[0] and second.procs[0] is None  # adopted, not a child
        assert second.pids[1] != pids[1] and process_exists(second.pids[1])  # started again
    finally:
        second.stop()
    assert not any(process_exists(p) for p in [*pids, *second.pids])
