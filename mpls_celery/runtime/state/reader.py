"""A read-only view of the runs in one Redis, for the dashboard and `mpls status/runs`. It has no
method that writes, it knows no key string (those come from keys.py), and it validates what it
reads like every other reader: a bad value is left out, never a crash."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
import redis

from mpls_celery.errors import TelemetryError
from mpls_celery.runtime.keys import RUNS_KEY, RunKeys
from mpls_celery.runtime.state.decode import decode_links
from mpls_celery.runtime.state.replies import scored
from mpls_celery.telemetry.link_traffic import LinkTraffic, decode_traffic
from mpls_celery.telemetry.records import EvalRecord, IterationRecord, Record, parse_record
from mpls_celery.telemetry.states import NodeState, RunStatus


@dataclass(frozen=True)
class RunRow:
    run_id: str
    created: float  # unix s
    state: str
    config: dict[str, Any]  # the run config (RunConfig as JSON)


@dataclass(frozen=True)
class RunView:
    """One run as the dashboard shows it, read in one round trip."""

    status: RunStatus
    nodes: list[NodeState]  # each carries its worker's published `version`
    recent: list[IterationRecord]  # the selected worker's last iterations, oldest first
    evals: list[EvalRecord]  # oldest first
    events: list[Record]  # the last records the launcher accepted, oldest first
    links: list[LinkTraffic] = field(default_factory=list)  # every link that carried a pull
    estimates: dict[tuple[int, int], float] = field(default_factory=dict)  # (puller, peer) → B/s


class RunReader:
    def __init__(self, client: redis.Redis) -> None:
        self._r = client

    def runs(self, limit: int = 50) -> list[RunRow]:
        """Newest first; runs whose keys have expired are left out."""
        ids = scored(self._r.zrevrange(RUNS_KEY, 0, limit - 1, withscores=True))
        pipe = self._r.pipeline(transaction=False)
        for run_id, _ in ids:
            keys = RunKeys(run_id)
            pipe.get(keys.config)
            pipe.hget(keys.status, "state")
        raw = pipe.execute(raise_on_error=False)
        rows = []
        for n, (run_id, created) in enumerate(ids):
            run = _run_config(raw[2 * n])
            if run is not None:
                state = raw[2 * n + 1]
                rows.append(RunRow(run_id, created, _text_or(state, "?"), run))
        return rows

    def config(self, run_id: str) -> dict[str, Any] | None:
        return _run_config(self._r.get(RunKeys(run_id).config))

    def status(self, run_id: str) -> RunStatus:
        return RunStatus.from_fields(self._r.hgetall(RunKeys(run_id).status))  # type: ignore[arg-type]

    def node_states(self, run_id: str, workers: int) -> list[NodeState]:
        keys = RunKeys(run_id)
        pipe = self._r.pipeline(transaction=False)
        for w in range(workers):
            pipe.hgetall(keys.state(w))
        return [_node(raw) for raw in pipe.execute(raise_on_error=False)]

    def view(self, run_id: str, workers: int, selected: int, event_tail: int) -> RunView:
        keys = RunKeys(run_id)
        pipe = self._r.pipeline(transaction=False)
        pipe.hgetall(keys.status)
        for w in range(workers):
            pipe.hgetall(keys.state(w))
        pipe.lrange(keys.recent(selected), 0, -1)
        pipe.lrange(keys.evals, 0, -1)
        pipe.lrange(keys.tail, 0, event_tail - 1)
        for w in range(workers):
            pipe.hgetall(keys.traffic(w))
            pipe.hgetall(keys.links(w))
        raw = pipe.execute(raise_on_error=False)
        n = workers
        per_link = raw[4 + n :]
        links: list[LinkTraffic] = []
        estimates: dict[tuple[int, int], float] = {}
        for w in range(workers):
            links += decode_traffic(w, _mapping(per_link[2 * w]))
            estimates |= {(w, p): b for p, b in decode_links(_mapping(per_link[2 * w + 1])).items()}
        recent = _records(raw[1 + n])
        return RunView(
            status=RunStatus.from_fields(_mapping(raw[0])),
            nodes=[_node(h) for h in raw[1 : 1 + n]],
            recent=[r for r in recent if isinstance(r, IterationRecord) and r.worker == selected],
            evals=[r for r in _records(raw[2 + n]) if isinstance(r, EvalRecord)],
            events=_records(raw[3 + n]),
            links=links,
            estimates=estimates,
        )


def _mapping(raw: object) -> dict[bytes, bytes]:
    return raw if isinstance(raw, dict) else {}


def _node(raw: object) -> NodeState:
    return NodeState.from_fields(_mapping(raw))[0]


def _records(raw: object) -> list[Record]:
    """A newest-first list of records, oldest first; entries that are no record are left out."""
    out: list[Record] = []
    for item in reversed(raw if isinstance(raw, list) else []):
        try:
            out.append(parse_record(item))
        except TelemetryError:
            continue
    return out


def _text_or(raw: object, default: str) -> str:
    return raw.decode(errors="replace") if isinstance(raw, bytes) else default


def _run_config(raw: object) -> dict[str, Any] | None:
    """The run config in a config key, or None when there is none (or it is not one)."""
    if not isinstance(raw, bytes):
        return None
    try:
        run = orjson.loads(raw)["run"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    return run if isinstance(run, dict) else None
