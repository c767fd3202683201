"""The one place that knows Redis key names and Celery queue names. Everything of a run lives
under `mpls:<run>:` (so concurrent runs on one Redis never meet):

mpls:runs                             zset run id → created (unix s)
mpls:<run>:config                     JSON: run config, runtime options, model layout
mpls:<run>:status                     hash: state, started, finished, ...
mpls:<run>:node:<i>:head              JSON: version, g, gt, t  (written last: a version is visible
mpls:<run>:node:<i>:layer:<l>:v<k>    encoded layer             only once all its layers exist)
mpls:<run>:node:<i>:record            JSON: the iteration record of the head version (written with
                                      it, so a kill before the record is emitted loses nothing)
mpls:<run>:node:<i>:trained           JSON: k — with pull_sees: trained, the model trained in
mpls:<run>:node:<i>:layer:<l>:t<k>    iteration k, read instead of head k until k + 1 is out
    Head, layers, record, trained and the pull mailbox live in the central Redis, or — when the
    worker's host sets MPLS_SNAPSHOT_REDIS_URL — in that host's own Redis (node state field
    `store` says which), so a peer's layers travel over the peer's own link.
mpls:<run>:node:<i>:state             hash: state, k, version, loss, acc, heartbeat, last pull, probe
                                      (offered | done: where it stands in the start-up probes), ...
mpls:<run>:node:<i>:links             hash: peer → the link speed (bytes/s) the worker plans with
                                      (probed, or the EWMA of what its pulls got)
mpls:<run>:node:<i>:probe             the worker's probe blob (random bytes), beside its snapshots:
                                      peers time one read of it to learn the link's speed
mpls:<run>:node:<i>:traffic           hash: <peer>:bytes / :seconds / :pulls / :last — totals of
                                      worker i's pulls over each link (the dashboard's links view)
mpls:<run>:node:<i>:gen / :lease      slice generation and the lease of the running slice
mpls:<run>:pull:<i>:<k>               hash: aggregation result for iteration k (TTL)
mpls:<run>:node:<i>:recent            list: the worker's last RECENT iteration records
mpls:<run>:evals                      list: the last RECENT evaluation records
mpls:<run>:events                     stream of telemetry records (bounded)

Queues: `mpls.nodes` / `mpls.pull` shared by every host, or per worker `mpls.node.<i>` /
`mpls.pull.<i>` (served only by the host that holds worker i's data)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

RUNS_KEY = "mpls:runs"
NODE_QUEUE = "mpls.nodes"
PULL_QUEUE = "mpls.pull"


def run_key(run_id: str, *parts: object) -> str:
    """`mpls:<run>:<part>:<part>…`; also the source of ACL key patterns (parts may be globs)."""
    return f"mpls:{run_id}:" + ":".join(str(p) for p in parts)


def slice_queue(worker: int, per_worker: bool) -> str:
    return f"mpls.node.{worker}" if per_worker else NODE_QUEUE


def pull_queue(worker: int, per_worker: bool) -> str:
    """Per-worker: the pull runs on the puller's host, so it measures that host's links."""
    return f"mpls.pull.{worker}" if per_worker else PULL_QUEUE


def host_queues(workers: list[int] | None, pulls: bool = True) -> list[str]:
    """What one host serves: the shared queues, or only its own workers' queues."""
    if workers is None:
        return [NODE_QUEUE, *([PULL_QUEUE] if pulls else [])]
    out = [slice_queue(w, True) for w in workers]
    return out + ([pull_queue(w, True) for w in workers] if pulls else [])


@dataclass(frozen=True)
class RunKeys:
    run_id: str

    @property
    def prefix(self) -> str:
        return run_key(self.run_id, "")

    @property
    def config(self) -> str:
        return run_key(self.run_id, "config")

    @property
    def status(self) -> str:
        return run_key(self.run_id, "status")

    @property
    def events(self) -> str:
        return run_key(self.run_id, "events")

    @property
    def evals(self) -> str:
        return run_key(self.run_id, "evals")

    def node(self, worker: int, part: str) -> str:
        """state, head, record, trained, links, traffic, gen, lease, recent."""
        return run_key(self.run_id, "node", worker, part)

    def layer(self, worker: int, layer: int, version: int, kind: str = "v") -> str:
        """kind 'v': published version; 't': the model trained from that version."""
        return run_key(self.run_id, "node", worker, "layer", layer, f"{kind}{version}")

    def layer_prefix(self, worker: int, layer: int) -> str:
        return run_key(self.run_id, "node", worker, "layer", layer, "")

    def pull(self, worker: int, k: int) -> str:
        return run_key(self.run_id, "pull", worker, k)

    def pull_ready(self, worker: int, k: int) -> str:
        return run_key(self.run_id, "pull", worker, k, "ready")


def decode_traffic(raw: Mapping[bytes, bytes]) -> dict[int, dict[str, float]]:
    """A traffic hash as peer → {bytes, seconds, pulls, last}."""
    out: dict[int, dict[str, float]] = {}
    for field, value in raw.items():
        peer, _, what = field.decode().partition(":")
        out.setdefault(int(peer), {})[what] = float(value)
    return out


def decode_state(raw: Mapping[bytes, bytes]) -> dict[str, Any]:
    """A node state hash (JSON values, plain strings kept)."""
    state: dict[str, Any] = {}
    for k, v in raw.items():
        try:
            state[k.decode()] = orjson.loads(v)
        except orjson.JSONDecodeError:
            state[k.decode()] = v.decode(errors="replace")
    return state
