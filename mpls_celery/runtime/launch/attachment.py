"""The launcher's lease on its run: one launcher at a time is attached to a run, and renews a
lease in Redis while it lives. The Celery processes it started stop when the lease has lapsed
for their grace period (`worker/launcher_watch.py`); `mpls up --resume` takes a lapsed lease, or
one whose holder is a process of this host that no longer exists."""

from __future__ import annotations

import os
import secrets
import socket
import time

from mpls_celery.errors import ConfigError, RunAborted
from mpls_celery.runtime.backend.pids import process_exists
from mpls_celery.runtime.state.lifecycle import LauncherInfo
from mpls_celery.runtime.store import RunStore

LEASE_SECONDS = 10.0
RENEW_EVERY = 2.0


class LauncherLease:
    def __init__(self, store: RunStore) -> None:
        self.store = store
        self.info = LauncherInfo(
            secrets.token_hex(6), os.getpid(), socket.gethostname(), time.time()
        )
        self._renewed = 0.0

    def attach(self) -> None:
        """ConfigError when a live launcher holds the run."""
        holder = self.store.run.launcher()
        dead = (
            holder is not None and holder.host == self.info.host and not process_exists(holder.pid)
        )
        replace = holder.id if holder is not None and dead else None
        if not self.store.run.attach(self.info, LEASE_SECONDS, replace=replace):
            other = self.store.run.launcher()
            where = f"pid {other.pid} on {other.host}" if other else "another launcher"
            raise ConfigError(
                f"run {self.store.run_id} is attached to a live launcher ({where}); stop it with "
                f"`mpls down {self.store.run_id}`, or resume once it is gone"
            )
        self._renewed = time.monotonic()

    def renew(self) -> None:
        """Every RENEW_EVERY seconds; RunAborted when another launcher took the run over."""
        if time.monotonic() - self._renewed < RENEW_EVERY:
            return
        renewed = self.store.run.renew(self.info.id, self.info, LEASE_SECONDS)
        if not renewed and not self.store.run.attach(self.info, LEASE_SECONDS):  # lapsed meanwhile
            raise RunAborted(f"another launcher took over run {self.store.run_id}")
        self._renewed = time.monotonic()

    def detach(self) -> None:
        self.store.run.detach(self.info.id)
