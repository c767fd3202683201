"""A read-only view of the runs in one Redis, for the dashboard and `mpls status/runs`. It has no
method that writes, and it knows no key string (those come from keys.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
import redis

from mpls_celery.runtime.keys import RUNS_KEY, RunKeys, decode_state, decode_traffic
from mpls_celery.runtime.replies import scored, text_hash
from mpls_celery.telemetry.links import LinkTraffic
from mpls_celery.telemetry.records import EvalRecord, IterationRecord, Record, parse_record


@dataclass(frozen=True)
class RunRow:
    run_id: str
    created: float  # unix s
    state: str
    config: dict[str, Any]  # the run config (RunConfig as JSON)


@dataclass(frozen=True)
class RunView:
    """One run as the dashboard shows it, read in one round trip."""

    status: dict[str, str]
    nodes: list[dict[str, Any]]  # state hashes; each carries its worker's published `version`
    recent: list[IterationRecord]  # the selected worker's last iterations, oldest first
    evals: list[EvalRecord]  # oldest first
    events: list[Record]  # the stream's tail, oldest first
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
        raw = pipe.execute()
        rows = []
        for n, (run_id, created) in enumerate(ids):
            config, state = raw[2 * n], raw[2 * n + 1]
            if config is not None:
                run = orjson.loads(config)["run"]
                rows.append(RunRow(run_id, created, (state or b"?").decode(), run))
        return rows

    def config(self, run_id: str) -> dict[str, Any] | None:
        raw = self._r.get(RunKeys(run_id).config)
        return None if raw is None else dict(orjson.loads(raw)["run"])

    def status(self, run_id: str) -> dict[str, str]:
        return text_hash(self._r.hgetall(RunKeys(run_id).status))

    def node_states(self, run_id: str, workers: int) -> list[dict[str, Any]]:
        keys = RunKeys(run_id)
        pipe = self._r.pipeline(transaction=False)
        for w in range(workers):
            pipe.hgetall(keys.node(w, "state"))
        return [decode_state(raw) for raw in pipe.execute()]

    def view(self, run_id: str, workers: int, selected: int, event_tail: int) -> RunView:
        keys = RunKeys(run_id)
        pipe = self._r.pipeline(transaction=False)
        pipe.hgetall(keys.status)
        for w in range(workers):
            pipe.hgetall(keys.node(w, "state"))
        pipe.lrange(keys.node(selected, "recent"), 0, -1)
        pipe.lrange(keys.evals, 0, -1)
        pipe.xrevrange(keys.events, count=event_tail)
        for w in range(workers):
            pipe.hgetall(keys.node(w, "traffic"))
            pipe.hgetall(keys.node(w, "links"))
        raw = pipe.execute()
        n = workers
        per_link = raw[4 + n :]
        links, estimates = [], {}
        for w in range(workers):
            for peer, t in sorted(decode_traffic(per_link[2 * w]).items()):
                links.append(
                    LinkTraffic(
                        w,
                        peer,
                        t.get("bytes", 0.0),
                        t.get("seconds", 0.0),
                        int(t.get("pulls", 0)),
                        t.get("last"),
                    )
                )
            for peer, bps in per_link[2 * w + 1].items():
                estimates[(w, int(peer))] = float(bps)
        return RunView(
            status={k.decode(): v.decode() for k, v in raw[0].items()},
            nodes=[decode_state(h) for h in raw[1 : 1 + n]],
            recent=[
                r
                for r in (parse_record(x) for x in reversed(raw[1 + n]))
                if isinstance(r, IterationRecord)
            ],
            evals=[
                r
                for r in (parse_record(x) for x in reversed(raw[2 + n]))
                if isinstance(r, EvalRecord)
            ],
            events=[parse_record(fields[b"r"]) for _, fields in reversed(raw[3 + n])],
            links=links,
            estimates=estimates,
        )
