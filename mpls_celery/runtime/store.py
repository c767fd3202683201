"""All shared run state of one run in Redis: versions, node state, links, leases, the pull
mailbox and telemetry writes. Key and queue names come from `keys.py`, the only place that
knows them; readers that must not write use `reader.py`."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import redis

from mpls_celery.runtime.connection import redis_client
from mpls_celery.runtime.keys import RUNS_KEY, RunKeys, decode_state
from mpls_celery.runtime.leases import Leases
from mpls_celery.runtime.mailbox import Mailbox
from mpls_celery.runtime.replies import blob, blobs, stream_entries, text_hash
from mpls_celery.telemetry.records import (
    EvalRecord,
    IterationRecord,
    Record,
    parse_record,
    to_json,
)

# Atomic compare-and-set publish. The layers arrive first under this writer's own temporary keys
# (plain pipelined SETs: big values never pass through Lua); the script then checks the head and
# renames them into place with the record and the head, or drops them; then it collects version
# - keep (and the trained copy of the iteration just ended). Modes: 'next' needs head v - 1 (or
# none for v = 0); 'seed' any older head (a worker moved to a new snapshot store); 'repair' head
# v itself (its layers were found corrupt). KEYS: head, record, n temporaries, n finals, stale.
_PUBLISH = """
local cur = redis.call('GET', KEYS[1])
local curv = -1
if cur then curv = cjson.decode(cur)['version'] end
local v = tonumber(ARGV[1])
local mode = ARGV[2]
local n = tonumber(ARGV[4])
if not (curv == v - 1 or (mode == 'seed' and curv < v) or (mode == 'repair' and curv == v)) then
  for i = 1, n do redis.call('DEL', KEYS[2 + i]) end
  return 0
end
for i = 1, n do
  redis.call('RENAME', KEYS[2 + i], KEYS[2 + n + i])
  redis.call('PERSIST', KEYS[2 + n + i])
end
if ARGV[5] ~= '' then redis.call('SET', KEYS[2], ARGV[5]) end
redis.call('SET', KEYS[1], ARGV[3])
for i = 3 + 2 * n, #KEYS do redis.call('DEL', KEYS[i]) end
return 1
"""
TEMP_TTL_MS = 120_000  # temporaries of a writer killed mid-publish expire by themselves
# The trained model of iteration k, readable until version k + 1 is published; only while the
# worker's head is still k (a stale process writes nothing). Staged like a publish. KEYS: head,
# trained, n temporaries, n finals (layers t<k>).
_PUBLISH_TRAINED = """
local cur = redis.call('GET', KEYS[1])
local n = tonumber(ARGV[3])
if not cur or cjson.decode(cur)['version'] ~= tonumber(ARGV[1]) then
  for i = 1, n do redis.call('DEL', KEYS[2 + i]) end
  return 0
end
for i = 1, n do
  redis.call('RENAME', KEYS[2 + i], KEYS[2 + n + i])
  redis.call('PEXPIRE', KEYS[2 + n + i], ARGV[2])
end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return 1
"""
# a version can be collected between reading its head and its layers: read again
READ_ATTEMPTS = 3
EVENTS_MAXLEN = 20_000  # the launcher drains it to metrics.jsonl continuously
RECENT = 100


@dataclass(frozen=True)
class Head:
    worker: int
    version: int
    progress: list[float]  # g of this version
    total: list[float]  # running sum of g over the worker's versions
    t: float

    @classmethod
    def parse(cls, worker: int, raw: bytes) -> Head:
        data = orjson.loads(raw)
        g = [float(x) for x in data["g"]]
        total = [float(x) for x in data["gt"]] if "gt" in data else g
        return cls(worker, int(data["version"]), g, total, float(data["t"]))


class RunStore:
    def __init__(self, client: redis.Redis, run_id: str, snapshot_url: str | None = None) -> None:
        self.r = client
        self.run_id = run_id
        self.keys = RunKeys(run_id)
        self.leases = Leases(client, self.keys)
        self.mailbox = Mailbox(self.keys, self.snapshot_client)
        self.snapshot_url = snapshot_url or ""  # where this process publishes ('' = central)
        self._clients: dict[str, redis.Redis] = {}
        self._where: dict[int, tuple[str, float]] = {}

    # where snapshots live ----------------------------------------------------------------------
    def _client(self, url: str) -> redis.Redis:
        if not url:
            return self.r
        if url not in self._clients:
            self._clients[url] = redis_client(url)
        return self._clients[url]

    def store_urls(self, workers: Sequence[int], max_age: float = 5.0) -> list[str]:
        """Each worker's snapshot store ('' = central), cached for `max_age` seconds."""
        now = time.monotonic()
        stale = [w for w in workers if w not in self._where or now - self._where[w][1] > max_age]
        if stale:
            pipe = self.r.pipeline(transaction=False)
            for w in stale:
                pipe.hget(self.keys.node(w, "state"), "store")
            for w, raw in zip(stale, pipe.execute(), strict=True):
                self._where[w] = (raw.decode() if raw else "", now)
        return [self._where[w][0] for w in workers]

    def snapshot_client(self, worker: int) -> redis.Redis:
        return self._client(self.store_urls([worker])[0])

    # run lifecycle -----------------------------------------------------------------------------
    def create(self, config: Mapping[str, Any]) -> None:
        now = time.time()
        pipe = self.r.pipeline()
        pipe.set(self.keys.config, orjson.dumps(config))
        pipe.hset(self.keys.status, mapping={"state": "running", "started": now})
        pipe.zadd(RUNS_KEY, {self.run_id: now})
        pipe.execute()

    def config(self) -> dict[str, Any]:
        raw = self.r.get(self.keys.config)
        if raw is None:
            from mpls_celery.errors import RunNotFound

            raise RunNotFound(f"run {self.run_id!r} not found in Redis")
        data: dict[str, Any] = orjson.loads(raw)
        return data

    def status(self) -> dict[str, str]:
        raw = self.r.hgetall(self.keys.status)
        return text_hash(raw)

    def set_status(self, state: str, **fields: object) -> None:
        self.r.hset(
            self.keys.status, mapping={"state": state, **{k: str(v) for k, v in fields.items()}}
        )

    # versions ----------------------------------------------------------------------------------
    def publish(
        self,
        worker: int,
        version: int,
        layers: Sequence[bytes],
        progress: Sequence[float],
        t: float,
        keep: int,
        mode: str = "next",
        total: Sequence[float] | None = None,
        record: bytes = b"",
    ) -> bool:
        """Write all layers of `version`, the iteration record that made it, then its head,
        atomically and only if the head is still version - 1 (or absent for version 0) in this
        process's snapshot store (see _PUBLISH for the other modes). False when another process
        got there first."""
        gt = list(progress if total is None else total)
        head = orjson.dumps({"version": version, "g": list(progress), "gt": gt, "t": t})
        new = [self.keys.layer(worker, i, version) for i in range(len(layers))]
        stale = [self.keys.layer(worker, i, version - 1, "t") for i in range(len(layers))]
        if version >= keep:
            stale += [self.keys.layer(worker, i, version - keep) for i in range(len(layers))]
        keys = [self.keys.node(worker, "head"), self.keys.node(worker, "record")]
        args: list[bytes | str | int] = [version, mode, head, len(layers), record]
        if not self._staged(worker, layers, _PUBLISH, keys, new, stale, args):
            return False
        if self.store_urls([worker])[0] != self.snapshot_url:
            self.r.hset(self.keys.node(worker, "state"), "store", self.snapshot_url)
            self._where[worker] = (self.snapshot_url, time.monotonic())
        return True

    def heads(self, workers: Sequence[int]) -> list[Head | None]:
        """One pipelined read per snapshot store involved (one in total without local stores)."""
        by_store: dict[str, list[int]] = {}
        for w, url in zip(workers, self.store_urls(workers), strict=True):
            by_store.setdefault(url, []).append(w)
        raws: dict[int, bytes | None] = {}
        for url, group in by_store.items():
            pipe = self._client(url).pipeline(transaction=False)
            for w in group:
                pipe.get(self.keys.node(w, "head"))
            raws.update(zip(group, pipe.execute(), strict=True))
        return [None if raws[w] is None else Head.parse(w, raws[w]) for w in workers]  # type: ignore[arg-type]

    def head(self, worker: int) -> Head | None:
        return self.heads([worker])[0]

    def latest_layers(
        self, worker: int, layers: Sequence[int], trained: bool = True
    ) -> tuple[Head | None, list[bytes | None]]:
        """The worker's current head and those layers of that very version; with `trained`, of
        the model it trained from that version once that is readable. Two round trips (the
        head, then the layers); read again if that version was collected in between."""
        client = self.snapshot_client(worker)
        prefixes = [self.keys.layer_prefix(worker, i) for i in layers]
        for attempt in range(READ_ATTEMPTS):
            wanted = ["head", "trained"] if trained else ["head"]
            raw_head, *raw_rest = blobs(client.mget([self.keys.node(worker, k) for k in wanted]))
            raw_trained = raw_rest[0] if raw_rest else None
            if raw_head is None:
                return None, []
            head = Head.parse(worker, raw_head)
            name = f"v{head.version}"
            if raw_trained is not None and int(raw_trained) >= head.version:
                name = f"t{int(raw_trained)}"
            values = blobs(client.mget([prefix + name for prefix in prefixes])) if layers else []
            if all(v is not None for v in values) or attempt == READ_ATTEMPTS - 1:
                return head, values
        raise AssertionError("unreachable")

    def publish_trained(self, worker: int, k: int, layers: Sequence[bytes], ttl: float) -> bool:
        """Make the model trained in iteration k readable by pulls (pull_sees: trained) until
        version k + 1 replaces it; False when the head is no longer k."""
        keys = [self.keys.node(worker, "head"), self.keys.node(worker, "trained")]
        finals = [self.keys.layer(worker, i, k, "t") for i in range(len(layers))]
        args: list[bytes | str | int] = [k, int(ttl * 1000), len(layers)]
        return self._staged(worker, layers, _PUBLISH_TRAINED, keys, finals, [], args)

    def _staged(
        self,
        worker: int,
        layers: Sequence[bytes],
        script: str,
        keys: list[str],
        finals: list[str],
        extra: list[str],
        args: list[bytes | str | int],
    ) -> bool:
        """Write `layers` to this writer's own temporary keys (plain pipelined SETs: big values
        never pass through Lua), then run `script` on KEYS = keys + temporaries + finals +
        extra, which renames them into place or drops them — one round trip."""
        token = secrets.token_hex(6)
        temps = [self.keys.node(worker, f"tmp:{token}:{i}") for i in range(len(layers))]
        every = [*keys, *temps, *finals, *extra]
        pipe = self._client(self.snapshot_url).pipeline(transaction=False)
        for temp, value in zip(temps, layers, strict=True):
            pipe.set(temp, value, px=TEMP_TTL_MS)
        pipe.eval(script, len(every), *every, *args)
        return bool(pipe.execute()[-1])

    def last_record(self, worker: int) -> bytes | None:
        """The record of the iteration that made the worker's head version (see publish)."""
        return blob(self.snapshot_client(worker).get(self.keys.node(worker, "record")))

    def fetch_layers(self, worker: int, version: int, layers: Sequence[int]) -> list[bytes | None]:
        if not layers:
            return []
        keys = [self.keys.layer(worker, i, version) for i in layers]
        return blobs(self.snapshot_client(worker).mget(keys))

    # node state, links, leases -----------------------------------------------------------------
    def set_node_state(self, worker: int, beat: bool = True, **fields: object) -> None:
        """`beat`: also refresh the heartbeat (False when someone else writes about a worker)."""
        mapping = _state_mapping(fields, beat)
        self.r.hset(self.keys.node(worker, "state"), mapping=mapping)  # type: ignore[arg-type]

    def peer_view(
        self, worker: int, peers: Sequence[int]
    ) -> tuple[list[Head | None], list[dict[str, Any]], dict[int, float]]:
        """Peers' heads and states and this worker's link estimates: two round trips when every
        snapshot is central (plus one per other snapshot store)."""
        pipe = self.r.pipeline(transaction=False)
        for w in peers:
            pipe.hgetall(self.keys.node(w, "state"))
        pipe.hgetall(self.keys.node(worker, "links"))
        raw = pipe.execute()
        states = [decode_state(h) for h in raw[: len(peers)]]
        for w, state in zip(peers, states, strict=True):
            self._where[w] = (str(state.get("store", "")), time.monotonic())
        links = {int(k): float(v) for k, v in raw[-1].items()}
        return self.heads(peers), states, links

    def node_states(self, workers: Iterable[int]) -> list[dict[str, Any]]:
        ids = list(workers)
        pipe = self.r.pipeline(transaction=False)
        for w in ids:
            pipe.hgetall(self.keys.node(w, "state"))
        return [decode_state(raw) for raw in pipe.execute()]

    def links(self, worker: int) -> dict[int, float]:
        raw = self.r.hgetall(self.keys.node(worker, "links"))
        return {int(k): float(v) for k, v in raw.items()}

    def put_probe_blob(self, worker: int, data: bytes) -> None:
        """Beside the worker's snapshots, so that reading it crosses the same link a pull does."""
        self._client(self.snapshot_url).set(self.keys.node(worker, "probe"), data)

    def generation(self, worker: int) -> int:
        raw = self.r.get(self.keys.node(worker, "gen"))
        return int(raw) if raw is not None else 0

    def advance_generation(self, worker: int, expected: int) -> bool:
        script = "if tonumber(redis.call('GET', KEYS[1]) or '0') == tonumber(ARGV[1]) then " \
                 "redis.call('SET', KEYS[1], ARGV[1] + 1) return 1 end return 0"  # fmt: skip
        return bool(self.r.eval(script, 1, self.keys.node(worker, "gen"), expected))

    # telemetry ---------------------------------------------------------------------------------
    def emit(
        self,
        record: Record,
        node_state: Mapping[str, object] | None = None,
        links: Mapping[int, float] | None = None,
    ) -> None:
        """Append to the events stream and to the short list the dashboard reads (and update the
        worker's state hash) in one round trip."""
        data = to_json(record)
        recent = None
        if isinstance(record, IterationRecord):
            recent = self.keys.node(record.worker, "recent")
        elif isinstance(record, EvalRecord):
            recent = self.keys.evals
        pipe = self.r.pipeline(transaction=True)  # the record and the state's k land together
        pipe.xadd(self.keys.events, {"r": data}, maxlen=EVENTS_MAXLEN, approximate=True)
        if recent:
            pipe.lpush(recent, data)
            pipe.ltrim(recent, 0, RECENT - 1)
        if node_state is not None and isinstance(record, IterationRecord):
            pipe.hset(self.keys.node(record.worker, "state"), mapping=_state_mapping(node_state))  # type: ignore[arg-type]
        if links and not isinstance(record, EvalRecord):
            pipe.hset(self.keys.node(record.worker, "links"), mapping=links)  # type: ignore[arg-type]
        if isinstance(record, IterationRecord) and record.links:
            traffic = self.keys.node(record.worker, "traffic")
            for peer, (nbytes, seconds, *_) in record.links.items():
                if nbytes <= 0:
                    continue  # the peer brought nothing back
                pipe.hincrbyfloat(traffic, f"{peer}:bytes", nbytes)
                pipe.hincrbyfloat(traffic, f"{peer}:seconds", seconds)
                pipe.hincrby(traffic, f"{peer}:pulls", 1)
                pipe.hset(traffic, f"{peer}:last", record.t)
        pipe.execute()

    def read_events(self, after: str = "0-0", count: int = 10_000) -> tuple[list[Record], str]:
        entries = stream_entries(
            self.r.xrange(self.keys.events, min=f"({after}" if after != "0-0" else "-", count=count)
        )
        records = [parse_record(fields[b"r"]) for _, fields in entries]
        last = entries[-1][0] if entries else after
        return records, last

    # housekeeping ------------------------------------------------------------------------------
    def run_keys(self, client: redis.Redis | None = None) -> list[bytes]:
        return list((client or self.r).scan_iter(match=f"{self.keys.prefix}*", count=1000))

    def _all_clients(self) -> list[redis.Redis]:
        """The central Redis and every snapshot store a worker of this run recorded."""
        try:
            workers = int(self.config()["run"]["workers"])
        except Exception:
            workers = 0
        urls = {u for u in self.store_urls(list(range(workers)), max_age=0) if u}
        return [self.r, *(self._client(u) for u in sorted(urls))]

    def expire(self, seconds: int) -> None:
        for client in self._all_clients():
            pipe = client.pipeline(transaction=False)
            for key in self.run_keys(client):
                pipe.expire(key, seconds)
            pipe.execute()

    def purge(self) -> int:
        deleted = 0
        for client in reversed(self._all_clients()):  # central last: it says where the rest is
            keys = self.run_keys(client)
            if keys:
                client.delete(*keys)
            deleted += len(keys)
        self.r.zrem(RUNS_KEY, self.run_id)
        return deleted


def _state_mapping(fields: Mapping[str, object], beat: bool = True) -> dict[str, bytes | str]:
    mapping = {k: v if isinstance(v, bytes | str) else orjson.dumps(v) for k, v in fields.items()}
    if beat:
        mapping["heartbeat"] = orjson.dumps(time.time())
    return mapping
