"""One run's shared state in Redis, opened once and handed out by job. Its one job: compose the
parts (state/), each of which owns its keys and validates what it reads:

    snapshots   versioned layers, heads, trained copies, probe blobs (per-host stores included)
    nodes       each worker's typed state, link estimates, slice generation
    events      per-worker telemetry streams, the dashboard's lists
    run         config, status, the attached launcher's lease, expiry and purge
    leases      the lease that keeps one slice per worker
    mailbox     where an aggregation task leaves a worker's pull result

Nothing outside state/ touches a Redis client of the run's keys."""

from __future__ import annotations

import redis

from mpls_celery.runtime.backend.connection import redis_client
from mpls_celery.runtime.keys import RunKeys
from mpls_celery.runtime.state.events import EventLog
from mpls_celery.runtime.state.leases import Leases
from mpls_celery.runtime.state.lifecycle import RunLifecycle
from mpls_celery.runtime.state.mailbox import Mailbox
from mpls_celery.runtime.state.nodes import NodeStore
from mpls_celery.runtime.state.snapshots import SnapshotStore


class RunStore:
    def __init__(self, client: redis.Redis, run_id: str, snapshot_url: str | None = None) -> None:
        """`snapshot_url`: where this process publishes its workers' snapshots (None: the
        central Redis, `client`)."""
        self.run_id = run_id
        self.keys = RunKeys(run_id)
        self.snapshots = SnapshotStore(client, self.keys, snapshot_url or "", redis_client)
        self.nodes = NodeStore(client, self.keys)
        self.events = EventLog(client, self.keys)
        self.run = RunLifecycle(client, self.keys, self.snapshots)
        self.leases = Leases(client, self.keys)
        self.mailbox = Mailbox(self.keys, self.snapshots.client_of)
