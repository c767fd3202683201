"""Per-link traffic (puller × peer) from runtime iteration records: bytes moved, seconds spent,
measured speed, and how busy each sender's link was over time. The report's link matrix, the
TUI's links view and the multi-host comparison all read it from here."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from mpls_celery.telemetry.records import IterationRecord, ProbeRecord, Record
from mpls_celery.telemetry.trace import record_transfers


@dataclass(frozen=True)
class LinkTraffic:
    puller: int
    peer: int
    bytes: float = 0.0
    seconds: float = 0.0  # summed durations of this link's pulls
    pulls: int = 0
    last_t: float | None = None  # run time of the last iteration that pulled over it

    @property
    def mbit(self) -> float | None:
        """Measured speed over the run: bytes / seconds of pulling over this link."""
        return self.bytes * 8 / self.seconds / 1e6 if self.seconds > 0 else None


def decode_traffic(puller: int, raw: Mapping[bytes, bytes]) -> list[LinkTraffic]:
    """A runtime traffic hash (`<peer>:bytes`, `:seconds`, `:pulls`, `:last`) as links, by peer;
    fields that are not a peer and a finite number are left out."""
    totals: dict[int, dict[str, float]] = {}
    for field, value in raw.items():
        peer, _, what = field.decode(errors="replace").partition(":")
        try:
            number = float(value)
            if math.isfinite(number) and what in ("bytes", "seconds", "pulls", "last"):
                totals.setdefault(int(peer), {})[what] = number
        except ValueError:
            continue
    return [
        LinkTraffic(
            puller,
            peer,
            t.get("bytes", 0.0),
            t.get("seconds", 0.0),
            int(t.get("pulls", 0)),
            t.get("last"),
        )
        for peer, t in sorted(totals.items())
    ]


def link_traffic(records: Iterable[Record]) -> list[LinkTraffic]:
    """Every link that carried a pull, ordered by (puller, peer); empty for simulator records,
    which carry no per-link transfers."""
    totals: dict[tuple[int, int], list[float]] = {}
    last: dict[tuple[int, int], float] = {}
    for record in records:
        if not isinstance(record, IterationRecord):
            continue
        for x in record_transfers(record):
            if x.nbytes <= 0:
                continue  # nothing came back (an outage, in the run's trace)
            row = totals.setdefault((x.puller, x.peer), [0.0, 0.0, 0.0])
            row[0] += x.nbytes
            row[1] += x.seconds
            row[2] += 1
            last[(x.puller, x.peer)] = max(last.get((x.puller, x.peer), 0.0), record.t)
    return [
        LinkTraffic(i, j, b, s, int(n), last[(i, j)])
        for (i, j), (b, s, n) in sorted(totals.items())
    ]


def pull_intervals(records: Iterable[Record]) -> list[tuple[int, int, float, float, float]]:
    """(puller, peer, start, end, bytes) of every transfer that moved bytes, in run time."""
    return [
        (x.puller, x.peer, x.start, x.start + x.seconds, x.nbytes)
        for r in records
        if isinstance(r, IterationRecord)
        for x in record_transfers(r)
        if x.nbytes > 0
    ]


def busy_throughput(
    records: Iterable[Record], group_of: Mapping[int, str]
) -> dict[str, float | None]:
    """Per group of senders (e.g. a host): bytes it sent / time at least one of its transfers
    ran, in Mbit/s — the capacity its link showed while busy (a single pull sees only its share
    when several run at once)."""
    spans: dict[str, list[tuple[float, float]]] = {}
    sent: dict[str, float] = {}
    for _, peer, start, end, nbytes in pull_intervals(records):
        group = group_of[peer]
        spans.setdefault(group, []).append((start, end))
        sent[group] = sent.get(group, 0.0) + nbytes
    out: dict[str, float | None] = {}
    for group, intervals in spans.items():
        busy = _union_length(intervals)
        out[group] = sent[group] * 8 / busy / 1e6 if busy > 0 else None
    return out


def _union_length(intervals: Sequence[tuple[float, float]]) -> float:
    total, reach = 0.0, -np.inf
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return float(total)


Key = TypeVar("Key", int, str)


def link_load(
    records: Sequence[Record], key: Callable[[int, int], Key], bin_seconds: float
) -> tuple[np.ndarray, dict[Key, np.ndarray]]:
    """(bin starts, key → Mbit/s moved in each bin), each transfer spread evenly over its
    duration and counted under key(puller, peer)."""
    intervals = pull_intervals(records)
    if not intervals:
        return np.zeros(0), {}
    horizon = max(end for *_, end, _ in intervals)
    edges = np.arange(0.0, horizon + bin_seconds, bin_seconds)
    out: dict[Key, np.ndarray] = {}
    for puller, peer, start, end, nbytes in intervals:
        row = out.setdefault(key(puller, peer), np.zeros(len(edges)))
        lo, hi = max(start, 0.0), max(end, start + 1e-9)
        rate = nbytes / (hi - lo) if hi > lo else 0.0
        for b in range(int(lo // bin_seconds), int(hi // bin_seconds) + 1):
            overlap = min(hi, (b + 1) * bin_seconds) - max(lo, b * bin_seconds)
            if overlap > 0 and b < len(edges):
                row[b] += rate * overlap
    return edges, {k: out[k] * 8 / bin_seconds / 1e6 for k in sorted(out)}


def sender_utilisation(
    records: Sequence[Record], bin_seconds: float
) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """(bin starts, peer → Mbit/s it sent in each bin)."""
    return link_load(records, lambda puller, peer: peer, bin_seconds)


def busiest_rates(
    records: Sequence[Record],
    group_of: Mapping[int, str],
    bin_seconds: float = 1.0,
    quantile: float = 0.9,
) -> dict[str, float]:
    """Per group's link ("out a": what group a sent, "in a": what it received): the given
    quantile of its Mbit/s over the bins in which it moved anything. One pull measures only its
    share of a link that several pulls cross at once; the link's own rate shows when it is at its
    busiest."""
    loads: dict[str, float] = {}
    sides: list[Callable[[int, int], str]] = [
        lambda puller, peer: f"out {group_of[peer]}",
        lambda puller, peer: f"in {group_of[puller]}",
    ]
    for side in sides:
        for name, row in link_load(records, side, bin_seconds)[1].items():
            busy = row[row > 0]
            if busy.size:
                loads[name] = float(np.quantile(busy, quantile))
    return dict(sorted(loads.items()))


def probed_rates(
    records: Iterable[Record], group_of: Mapping[int, str] | None = None
) -> dict[tuple[str, str], float]:
    """(puller, peer) → median probed Mbit/s: per worker pair, or per pair of their groups
    (hosts); a group's own pairs (a host's workers among themselves) are left out."""
    name = group_of or {}
    rates: dict[tuple[str, str], list[float]] = {}
    for r in records:
        if not isinstance(r, ProbeRecord):
            continue
        for peer, (nbytes, seconds, *_) in r.links.items():
            pair = (name.get(r.worker, str(r.worker)), name.get(peer, str(peer)))
            if seconds > 0 and pair[0] != pair[1]:
                rates.setdefault(pair, []).append(nbytes * 8 / seconds / 1e6)
    return {pair: float(np.median(v)) for pair, v in sorted(rates.items())}
