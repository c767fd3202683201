"""Run directories: each run gets a folder of its own, also when many start in the same second."""

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mpls_celery.telemetry.rundir import new_run_dir


def test_runs_started_at_once_get_folders_of_their_own(tmp_path: Path):
    """Sixteen at once (scripts, the API in a loop, `--jobs`): a check-then-create would let two
    of them take one name and write into each other's metrics."""
    start = threading.Barrier(16)

    def one(_: int) -> Path:
        start.wait()
        return new_run_dir(tmp_path, "sim")

    with ThreadPoolExecutor(16) as pool:
        folders = list(pool.map(one, range(16)))
    assert len(set(folders)) == 16 and all(folder.is_dir() for folder in folders)
    assert {folder.parent for folder in folders} == {tmp_path}
