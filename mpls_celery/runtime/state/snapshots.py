"""Where workers' models live: versioned layer snapshots with a head written last, the trained copy
of the iteration in flight, the record of the head version and the probe blob — in the central
Redis, or in a host's own snapshot Redis (node state field `store` says which)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence

import orjson
import redis

from mpls_celery.errors import InvalidState
from mpls_celery.runtime.backend.connection import SCHEMES
from mpls_celery.runtime.keys import RunKeys
from mpls_celery.runtime.state.decode import Head
from mpls_celery.runtime.state.replies import blob, blobs

# Reads a head's version, or nil when the head is not a JSON object with a numeric version.
_HEAD_VERSION = """
local function head_version(raw)
  if not raw then return -1 end
  local ok, doc = pcall(cjson.decode, raw)
  if ok and type(doc) == 'table' and type(doc['version']) == 'number' then
    return doc['version']
  end
  return nil
end
"""
# Atomic compare-and-set publish. The layers arrive first under this writer's own temporary keys
# (plain pipelined SETs: big values never pass through Lua); the script then checks the head and
# renames them into place with the record and the head, or drops them; then it collects version
# - keep (and the trained copy of the iteration just ended). Modes: 'next' needs head v - 1 (or
# none for v = 0); 'seed' any older head (a worker moved to a new snapshot store); 'repair' head
# v itself (its layers were found corrupt); 'reset' exactly the head bytes ARGV[6] (a head its
# worker refused: garbage, or a version it never reached). KEYS: head, record, n temporaries,
# n finals, stale.
_PUBLISH = (
    _HEAD_VERSION
    + """
local cur = redis.call('GET', KEYS[1])
local curv = head_version(cur)
local v = tonumber(ARGV[1])
local mode = ARGV[2]
local n = tonumber(ARGV[4])
local ok
if mode == 'reset' then
  ok = (cur or '') == ARGV[6]
else
  ok = curv ~= nil and (curv == v - 1 or (mode == 'seed' and curv < v)
                        or (mode == 'repair' and curv == v))
end
if not ok then
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
)
TEMP_TTL_MS = 120_000  # temporaries of a writer killed mid-publish expire by themselves
# The trained model of iteration k, readable until version k + 1 is published; only while the
# worker's head is still k (a stale process writes nothing). Staged like a publish. KEYS: head,
# trained, n temporaries, n finals (layers t<k>).
_PUBLISH_TRAINED = (
    _HEAD_VERSION
    + """
local n = tonumber(ARGV[3])
if head_version(redis.call('GET', KEYS[1])) ~= tonumber(ARGV[1]) then
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
)
# a version can be collected between reading its head and its layers: read again
READ_ATTEMPTS = 3
STORE_CACHE_SECONDS = 5.0


class SnapshotStore:
    def __init__(
        self,
        central: redis.Redis,
        keys: RunKeys,
        snapshot_url: str,
        connect: Callable[[str], redis.Redis],
    ) -> None:
        """`snapshot_url`: where this process publishes ('' = central); `connect(url)`: a client
        for another host's snapshot store."""
        self._central, self.keys, self.snapshot_url = central, keys, snapshot_url
        self._connect = connect
        self._clients: dict[str, redis.Redis] = {}
        self._where: dict[int, tuple[str, float]] = {}

    # where snapshots live ----------------------------------------------------------------------
    def _client(self, url: str) -> redis.Redis:
        if not url:
            return self._central
        if url not in self._clients:
            self._clients[url] = self._connect(url)
        return self._clients[url]

    def remember(self, worker: int, url: str) -> None:
        """A store URL read with the worker's state (saves a round trip)."""
        self._where[worker] = (url, time.monotonic())

    def store_urls(self, workers: Sequence[int], max_age: float = STORE_CACHE_SECONDS) -> list[str]:
        """Each worker's snapshot store ('' = central), cached for `max_age` seconds."""
        now = time.monotonic()
        stale = [w for w in workers if w not in self._where or now - self._where[w][1] > max_age]
        if stale:
            pipe = self._central.pipeline(transaction=False)
            for w in stale:
                pipe.hget(self.keys.state(w), "store")
            for w, raw in zip(stale, pipe.execute(raise_on_error=False), strict=True):
                url = raw.decode(errors="replace") if isinstance(raw, bytes) else ""
                self._where[w] = (url if url.startswith(SCHEMES) else "", now)
        return [self._where[w][0] for w in workers]

    def client_of(self, worker: int) -> redis.Redis:
        """The Redis that holds `worker`'s snapshots (and its pull mailbox)."""
        return self._client(self.store_urls([worker])[0])

    def every_client(self, workers: int) -> list[redis.Redis]:
        """The central Redis and every snapshot store a worker of the run recorded."""
        urls = {u for u in self.store_urls(list(range(workers)), max_age=0) if u}
        return [self._central, *(self._client(u) for u in sorted(urls))]

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
        expected_head: bytes = b"",
    ) -> bool:
        """Write all layers of `version`, the iteration record that made it, then its head,
        atomically and only if the head is still version - 1 (or absent for version 0) in this
        process's snapshot store (see _PUBLISH for the other modes). False when another process
        got there first. True means the worker's `store` field must name this store."""
        gt = list(progress if total is None else total)
        head = orjson.dumps({"version": version, "g": list(progress), "gt": gt, "t": t})
        new = [self.keys.layer(worker, i, version) for i in range(len(layers))]
        stale = [self.keys.layer(worker, i, version - 1, "t") for i in range(len(layers))]
        if version >= keep:
            stale += [self.keys.layer(worker, i, version - keep) for i in range(len(layers))]
        keys = [self.keys.head(worker), self.keys.record(worker)]
        args: list[bytes | str | int] = [version, mode, head, len(layers), record, expected_head]
        return self._staged(worker, layers, _PUBLISH, keys, new, stale, args)

    def moved_here(self, worker: int) -> bool:
        """Whether a publish just moved the worker's snapshots to this process's store."""
        if self.store_urls([worker])[0] == self.snapshot_url:
            return False
        self.remember(worker, self.snapshot_url)
        return True

    def raw_head(self, worker: int) -> bytes | None:
        try:
            return blob(self.client_of(worker).get(self.keys.head(worker)))
        except redis.exceptions.ResponseError as exc:  # a head of the wrong Redis type
            raise InvalidState(f"worker {worker}'s head: {exc}") from None

    def head(self, worker: int) -> Head | None:
        """None when nothing is published; InvalidState when what is there is not a head."""
        raw = self.raw_head(worker)
        return None if raw is None else Head.parse(worker, raw)

    def heads(self, workers: Sequence[int]) -> list[Head | InvalidState | None]:
        """One MGET per snapshot store involved (a node reads its peers' heads every iteration;
        one command costs its client less than a pipeline of GETs); an unreadable head is
        returned as its InvalidState (for the caller to count), never raised."""
        by_store: dict[str, list[int]] = {}
        for w, url in zip(workers, self.store_urls(workers), strict=True):
            by_store.setdefault(url, []).append(w)
        raws: dict[int, object] = {}
        for url, group in by_store.items():
            client = self._client(url)
            raws.update(zip(group, client.mget([self.keys.head(w) for w in group]), strict=True))
            if missing := [w for w in group if raws[w] is None]:
                raws.update(self._read_missing(client, missing))
        return [_head_or_problem(w, raws[w]) for w in workers]

    def _read_missing(self, client: redis.Redis, workers: list[int]) -> dict[int, object]:
        """MGET reads a key of another Redis type as nil: GET again what it did not find, so a
        head that is no string is told (its error) from one not yet published (None)."""
        pipe = client.pipeline(transaction=False)
        for w in workers:
            pipe.get(self.keys.head(w))
        return dict(zip(workers, pipe.execute(raise_on_error=False), strict=True))

    def latest_layers(
        self, worker: int, layers: Sequence[int], trained: bool = True
    ) -> tuple[Head | None, list[bytes | None]]:
        """The worker's current head and those layers of that very version; with `trained`, of
        the model it trained from that version once that is readable. Two round trips (the
        head, then the layers); read again if that version was collected in between.
        InvalidState when the head is not a head."""
        client = self.client_of(worker)
        prefixes = [self.keys.layer_prefix(worker, i) for i in layers]
        wanted = [self.keys.head(worker)] + ([self.keys.trained(worker)] if trained else [])
        for attempt in range(READ_ATTEMPTS):
            try:
                raw_head, *raw_rest = blobs(client.mget(wanted))
            except redis.exceptions.ResponseError as exc:
                raise InvalidState(f"worker {worker}'s head: {exc}") from None
            if raw_head is None:
                return None, []
            head = Head.parse(worker, raw_head)
            name = f"v{head.version}"
            trained_k = _trained_version(raw_rest[0] if raw_rest else None)
            if trained_k is not None and trained_k >= head.version:
                name = f"t{trained_k}"
            values = blobs(client.mget([prefix + name for prefix in prefixes])) if layers else []
            if all(v is not None for v in values) or attempt == READ_ATTEMPTS - 1:
                return head, values
        raise AssertionError("unreachable")

    def publish_trained(self, worker: int, k: int, layers: Sequence[bytes], ttl: float) -> bool:
        """Make the model trained in iteration k readable by pulls (pull_sees: trained) until
        version k + 1 replaces it; False when the head is no longer k."""
        keys = [self.keys.head(worker), self.keys.trained(worker)]
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
        temps = [self.keys.temporary(worker, token, i) for i in range(len(layers))]
        every = [*keys, *temps, *finals, *extra]
        pipe = self._client(self.snapshot_url).pipeline(transaction=False)
        for temp, value in zip(temps, layers, strict=True):
            pipe.set(temp, value, px=TEMP_TTL_MS)
        pipe.eval(script, len(every), *every, *args)
        return bool(pipe.execute()[-1])

    def last_record(self, worker: int) -> bytes | None:
        """The record of the iteration that made the worker's head version (see publish)."""
        return blob(self.client_of(worker).get(self.keys.record(worker)))

    def fetch_layers(self, worker: int, version: int, layers: Sequence[int]) -> list[bytes | None]:
        if not layers:
            return []
        keys = [self.keys.layer(worker, version=version, layer=i) for i in layers]
        return blobs(self.client_of(worker).mget(keys))

    # link probes -------------------------------------------------------------------------------
    def put_probe_blob(self, worker: int, data: bytes) -> None:
        """Beside the worker's snapshots, so that reading it crosses the same link a pull does."""
        self._client(self.snapshot_url).set(self.keys.probe(worker), data)

    def read_probe_blob(self, worker: int) -> tuple[redis.Redis, str]:
        """The client and key a probe times (the caller times the read itself)."""
        return self.client_of(worker), self.keys.probe(worker)


def _head_or_problem(worker: int, raw: object) -> Head | InvalidState | None:
    if raw is None:
        return None
    if not isinstance(raw, bytes):
        return InvalidState(f"worker {worker}'s head: {raw}")
    try:
        return Head.parse(worker, raw)
    except InvalidState as exc:
        return exc


def _trained_version(raw: bytes | None) -> int | None:
    """The `trained` marker's k, or None when absent or not a number."""
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        return None
