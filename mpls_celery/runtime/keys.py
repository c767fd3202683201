"""The one place that knows Redis key names, Celery queue names and task names (an architecture
test fails on a key, queue or task name spelled anywhere else). Everything of a run lives under
`mpls:<run>:` (so concurrent runs on one Redis never meet):

mpls:runs                             zset run id → created (unix s)
mpls:<run>:config                     JSON: run config, runtime options, model layout
mpls:<run>:status                     hash: state, started, finished, reason, refused, pauses
mpls:<run>:launcher                   JSON: the attached launcher (id, pid, host), with a TTL it
                                      renews: the Celery processes it started stop when it lapses
mpls:<run>:evals                      list: the launcher's last RECENT evaluation records
mpls:<run>:tail                       list: the last records the launcher accepted (dashboard)
mpls:<run>:node:<i>:head              JSON: version, g, gt, t  (written last: a version is visible
mpls:<run>:node:<i>:layer:<l>:v<k>    encoded layer             only once all its layers exist)
mpls:<run>:node:<i>:record            JSON: the iteration record of the head version (written with
                                      it, so a kill before the record is emitted loses nothing)
mpls:<run>:node:<i>:trained           JSON: k — with pull_sees: trained, the model trained in
mpls:<run>:node:<i>:layer:<l>:t<k>    iteration k, read instead of head k until k + 1 is out
mpls:<run>:node:<i>:tmp:<token>:<l>   a publish's layers before its compare-and-set (TTL)
    Head, layers, record, trained, the probe blob and the pull mailbox live in the central Redis,
    or — when the worker's host sets MPLS_SNAPSHOT_REDIS_URL — in that host's own Redis (node
    state field `store` says which), so a peer's layers travel over the peer's own link.
mpls:<run>:node:<i>:state             hash: the worker's NodeState (telemetry/states.py)
mpls:<run>:node:<i>:events            stream: the worker's telemetry records, drained by the
                                      launcher into metrics.jsonl (a worker writes only its own)
mpls:<run>:node:<i>:links             hash: peer → the link speed (bytes/s) the worker plans with
mpls:<run>:node:<i>:probe             the worker's probe blob (random bytes), beside its snapshots
mpls:<run>:node:<i>:traffic           hash: <peer>:bytes / :seconds / :pulls / :last
mpls:<run>:node:<i>:recent            list: the worker's last RECENT iteration records
mpls:<run>:node:<i>:gen / :lease      slice generation and the lease of the running slice
mpls:<run>:pull:<i>:<k>[:ready]       the aggregation result for iteration k (TTL), and its signal

Queues: `mpls.nodes` / `mpls.pull` shared by every host, or per worker `mpls.node.<i>` /
`mpls.pull.<i>` (served only by the host that holds worker i's data)."""

from __future__ import annotations

from dataclasses import dataclass

RUNS_KEY = "mpls:runs"
NODE_QUEUE = "mpls.nodes"
PULL_QUEUE = "mpls.pull"
SLICE_TASK = "mpls.node.slice"
PULL_TASK = "mpls.pull.aggregate"
PING_TASK = "mpls.ping"
TASK_ROUTES = {"mpls.pull.*": {"queue": PULL_QUEUE}, "mpls.*": {"queue": NODE_QUEUE}}
# Celery's own keys: our queues (with kombu's priority suffixes), kombu's bindings and unacked
# bookkeeping, each worker's remote-control queue and result keys (the broker user's ACL).
BROKER_KEY_PATTERNS = ("mpls.*", "_kombu.*", "unacked*", "*.pidbox*", "celery*")


def run_key(run_id: str, *parts: object) -> str:
    """`mpls:<run>:<part>:<part>…`; also the source of ACL key patterns (parts may be globs)."""
    return f"mpls:{run_id}:" + ":".join(str(p) for p in parts)


def run_id_of(key: str) -> str | None:
    """The run a key belongs to (None for keys outside any run)."""
    head, _, rest = key.partition(":")
    return rest.partition(":")[0] or None if head == "mpls" and rest else None


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


def celery_name(role: str, tag: str) -> str:
    """A local Celery process's node name: its role and the run it serves (`nodes-<run>@host`)."""
    return f"{role}-{tag}@%h"


@dataclass(frozen=True)
class RunKeys:
    run_id: str

    def _node(self, worker: int, *parts: object) -> str:
        return run_key(self.run_id, "node", worker, *parts)

    # the run ---------------------------------------------------------------------------------
    @property
    def prefix(self) -> str:
        return run_key(self.run_id, "")

    @property
    def everything(self) -> str:
        """A glob over every key of the run (SCAN, ACL read rules)."""
        return run_key(self.run_id, "*")

    @property
    def config(self) -> str:
        return run_key(self.run_id, "config")

    @property
    def status(self) -> str:
        return run_key(self.run_id, "status")

    @property
    def launcher(self) -> str:
        return run_key(self.run_id, "launcher")

    @property
    def evals(self) -> str:
        return run_key(self.run_id, "evals")

    @property
    def tail(self) -> str:
        return run_key(self.run_id, "tail")

    # one worker ------------------------------------------------------------------------------
    def node_glob(self, worker: int) -> str:
        """Every key worker `worker` owns (its ACL write rule)."""
        return self._node(worker, "*")

    def state(self, worker: int) -> str:
        return self._node(worker, "state")

    def events(self, worker: int) -> str:
        return self._node(worker, "events")

    def head(self, worker: int) -> str:
        return self._node(worker, "head")

    def record(self, worker: int) -> str:
        return self._node(worker, "record")

    def trained(self, worker: int) -> str:
        return self._node(worker, "trained")

    def links(self, worker: int) -> str:
        return self._node(worker, "links")

    def probe(self, worker: int) -> str:
        return self._node(worker, "probe")

    def traffic(self, worker: int) -> str:
        return self._node(worker, "traffic")

    def recent(self, worker: int) -> str:
        return self._node(worker, "recent")

    def generation(self, worker: int) -> str:
        return self._node(worker, "gen")

    def lease(self, worker: int) -> str:
        return self._node(worker, "lease")

    def temporary(self, worker: int, token: str, index: int) -> str:
        return self._node(worker, "tmp", token, index)

    def layer(self, worker: int, layer: int, version: int, kind: str = "v") -> str:
        """kind 'v': published version; 't': the model trained from that version."""
        return self._node(worker, "layer", layer, f"{kind}{version}")

    def layer_prefix(self, worker: int, layer: int) -> str:
        return self._node(worker, "layer", layer, "")

    # pull results ----------------------------------------------------------------------------
    def pull_glob(self, worker: int) -> str:
        return run_key(self.run_id, "pull", worker, "*")

    def pull(self, worker: int, k: int) -> str:
        return run_key(self.run_id, "pull", worker, k)

    def pull_ready(self, worker: int, k: int) -> str:
        return run_key(self.run_id, "pull", worker, k, "ready")
