"""Per-link traffic from records: totals per puller ← peer, speeds, and a sender's busy rate."""

from __future__ import annotations

import pytest

from mpls_celery.telemetry.link_traffic import (
    busiest_rates,
    busy_throughput,
    link_traffic,
    probed_rates,
    sender_utilisation,
)
from mpls_celery.telemetry.records import IterationRecord, ProbeRecord, parse_record, to_json


def record(worker: int, t: float, links: dict[int, list[float]] | None) -> IterationRecord:
    plan = {p: [0] for p in links or {}}
    return IterationRecord("mpls", worker, 0, t, 1, 0.5, plan, 0.0, 1.0, 0.01, 2, links=links)


def test_links_round_trip_and_a_record_without_them_keeps_its_old_bytes():
    with_links = record(0, 3.0, {1: [1e6, 0.5, 2.0]})
    assert parse_record(to_json(with_links)) == with_links
    plain = record(0, 3.0, None)
    assert b"links" not in to_json(plain)
    assert parse_record(to_json(plain)) == plain


def test_totals_per_link_and_measured_speed():
    records = [
        record(0, 2.0, {1: [1e6, 0.5, 1.0], 2: [2e5, 1.0, 1.0]}),
        record(0, 4.0, {1: [1e6, 0.5, 3.0]}),
        record(1, 2.5, {0: [5e5, 0.25, 2.0]}),
        record(2, 1.0, None),  # a sim record: no per-link data
    ]
    links = {(x.puller, x.peer): x for x in link_traffic(records)}
    assert set(links) == {(0, 1), (0, 2), (1, 0)}
    assert links[(0, 1)].bytes == 2e6 and links[(0, 1)].pulls == 2 and links[(0, 1)].last_t == 4.0
    assert links[(0, 1)].mbit == pytest.approx(16.0)  # 2 MB in 1 s
    assert links[(0, 2)].mbit == pytest.approx(1.6)


def test_busy_throughput_counts_overlapping_transfers_once():
    # host h sends two 1 MB transfers that overlap fully (1.0-2.0 s): 2 MB in 1 busy second,
    # although each transfer alone measured 8 Mbit/s
    records = [record(0, 3.0, {1: [1e6, 1.0, 1.0]}), record(2, 3.0, {3: [1e6, 1.0, 1.0]})]
    rate = busy_throughput(records, {0: "g", 1: "h", 2: "g", 3: "h"})
    assert rate == {"h": pytest.approx(16.0)}
    _, sent = sender_utilisation(records, bin_seconds=1.0)
    assert sent[1][1] == pytest.approx(8.0) and sent[1][0] == 0.0


def test_a_links_busiest_rate_adds_up_the_pulls_that_share_it():
    groups = {0: "a", 1: "b", 2: "b", 3: "c"}
    records = [
        record(0, 9.0, {1: [1e6, 2.0, 0.0]}),  # b sends 4 Mbit/s to a over 0-2 s ...
        record(3, 9.0, {2: [1e6, 2.0, 0.0]}),  # ... and 4 Mbit/s to c: its link carries 8
        record(0, 9.0, {3: [5e5, 1.0, 4.0]}),  # c sends 4 Mbit/s to a over 4-5 s
    ]
    rates = busiest_rates(records, groups, bin_seconds=1.0, quantile=1.0)
    assert rates == pytest.approx({"out b": 8.0, "in a": 4.0, "in c": 4.0, "out c": 4.0})


def test_probed_rates_per_host_pair_are_medians_and_leave_a_hosts_own_pairs_out():
    groups = {0: "a", 1: "a", 2: "b"}
    records = [
        ProbeRecord("mpls", 0, 5.0, {1: [1e6, 0.001, 1.0], 2: [1e6, 1.0, 2.0]}),  # 8 Mbit/s
        ProbeRecord("mpls", 1, 5.0, {0: [1e6, 0.001, 3.0], 2: [1e6, 2.0, 3.5]}),  # 4 Mbit/s
        ProbeRecord("mpls", 2, 5.0, {0: [1e6, 4.0, 4.0]}),  # 2 Mbit/s
        record(0, 9.0, {2: [1e6, 8.0, 6.0]}),  # a pull is no probe
    ]
    assert probed_rates(records, groups) == pytest.approx({("a", "b"): 6.0, ("b", "a"): 2.0})
    assert probed_rates(records)[("2", "0")] == pytest.approx(2.0)
