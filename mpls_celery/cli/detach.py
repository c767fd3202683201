"""`mpls up --detach`: the launcher in a background process, reported as started only once it
is — its checks passed (model, data, device, Redis) and its run registered on this machine — so
a run that cannot start fails here, with its launcher's own error and exit status, not in a log
nobody reads."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from mpls_celery.cli.output import console, print_json
from mpls_celery.errors import MplsError
from mpls_celery.runtime.launch.local_runs import find
from mpls_celery.settings import Settings

START_WAIT_SECONDS = 300.0  # a large dataset's first load; after that, "still starting"
POLL_SECONDS = 0.1


class LaunchFailed(MplsError):
    """The background launcher ended before its run started: its error, its exit status."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def start_in_background(
    run_id: str, settings: Settings, as_json: bool = False, wait: float = START_WAIT_SECONDS
) -> None:
    args = [a for a in sys.argv[1:] if a != "--detach"] + ["--json"]
    args += [] if "--resume" in args else ["--run-id", run_id]
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.state_dir / f"up-{run_id}.log"
    with log_path.open("ab") as log:
        offset = log.tell()  # a resumed run appends to its log
        child = subprocess.Popen(
            [sys.executable, "-m", "mpls_celery", *args],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    state = "started" if _started(child, settings, run_id, wait, log_path, offset) else "starting"
    if as_json:
        print_json(
            {"run_id": run_id, "state": state, "launcher_pid": child.pid, "log": str(log_path)}
        )
        return
    what = "started" if state == "started" else "is still starting"
    console.print(f"run {run_id} {what} in the background; log: {log_path}")
    console.print("follow it with: mpls status · mpls tui · stop it with: mpls down")


def _started(
    child: subprocess.Popen[bytes],
    settings: Settings,
    run_id: str,
    wait: float,
    log_path: Path,
    offset: int,
) -> bool:
    """True once `child` registered the run, False if it has not within `wait`; LaunchFailed
    when it ended first without finishing the run."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        run = find(settings, run_id)
        if run is not None and run.launcher_pid == child.pid:
            return True
        code = child.poll()
        if code == 0:
            return True  # so short a run that it has finished: its summary is in the log
        if code is not None:
            raise LaunchFailed(_last_error(log_path, offset, code), code)
        time.sleep(POLL_SECONDS)
    return False


def _last_error(log_path: Path, offset: int, code: int) -> str:
    """The launcher's one-line error from what it wrote to the log this time."""
    with log_path.open("rb") as log:
        log.seek(offset)
        lines = log.read().decode(errors="replace").splitlines()
    errors = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
    if errors:
        return errors[-1]
    return f"the launcher exited with status {code} before the run started; see {log_path}"
