"""`mpls sim` comparing algorithms in parallel processes stops them all when it is stopped: by
SIGTERM (`kill`, timeout, a batch scheduler's cancel), which used to end the parent alone and
leave its workers computing to their horizon, and by SIGINT sent to it alone, which used to wait
for them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def started_comparison(tmp_path: Path) -> tuple[subprocess.Popen[str], list[psutil.Process]]:
    """Two algorithms with a horizon they would need minutes for, once both are training."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mpls_celery", "sim", "--workers", "4", "--model", "mlp",
         "--dataset", "digits", "--profile", "uniform", "--algo", "mpls,netmax", "--jobs", "2",
         "--until", "100000s", "--out", str(tmp_path)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # a group of its own: the signal goes to the parent alone
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        spawned = [c for c in psutil.Process(proc.pid).children() if _spawned(c)]
        if len(spawned) >= 3:  # the manager's server and two workers
            return proc, psutil.Process(proc.pid).children(recursive=True)
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("the comparison did not start its workers")


def _spawned(process: psutil.Process) -> bool:
    try:
        return "spawn_main" in " ".join(process.cmdline())
    except psutil.Error:
        return False


@pytest.mark.parametrize(
    ("sig", "code", "last_line"),
    [(signal.SIGTERM, 143, "error: terminated"), (signal.SIGINT, 130, None)],
)
def test_stopping_the_parent_stops_every_worker(tmp_path, sig, code, last_line):
    proc, children = started_comparison(tmp_path)
    try:
        time.sleep(2)  # well into their simulations
        os.kill(proc.pid, sig)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == code, err[-2000:]
        if last_line:
            assert err.strip().splitlines()[-1] == last_line
        _, alive = psutil.wait_procs(children, timeout=10)
        assert not alive, f"left running: {[p.pid for p in alive]}"
    finally:
        for child in psutil.Process().children(recursive=True):
            if child.pid == proc.pid or child in children:
                child.kill()
