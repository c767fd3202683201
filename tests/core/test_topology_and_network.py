import numpy as np
import pytest

from mpls_celery.config.profiles import load_profile
from mpls_celery.core.network_profile import MBIT, NetworkProfile, Outage, uniform_profile
from mpls_celery.core.topology import full, random_graph, ring


def test_ring_full_and_random_shapes():
    assert ring(30).degree_stats() == {"min": 2, "mean": 2.0, "max": 2}
    assert ring(30).diameter == 15
    assert full(5).diameter == 1
    topo = random_graph(30, 0.5, seed=1)
    assert topo.connected
    assert not np.array_equal(topo.adjacency, random_graph(30, 0.5, seed=2).adjacency)
    assert np.array_equal(topo.adjacency, random_graph(30, 0.5, seed=1).adjacency)


def test_paper30_reproduces_the_room_and_mode_table():
    profile = load_profile("paper30", 30, seed=1)
    assert profile is not None
    groups = [profile.devices[i] for i in (0, 5, 10, 15, 20, 25)]
    assert groups == [
        "TX2 mode 1, room A", "TX2 mode 2, room B", "TX2 mode 3, room C",
        "NX mode 1, room A", "NX mode 2, room B", "NX mode 3, room C",
    ]  # fmt: skip
    throughput = np.array([256 * 1.3, 256 * 1.12, 256 * 0.85, 384 * 1.1, 384 * 0.8, 384 * 0.8])
    np.testing.assert_allclose(profile.compute_speed[::5], throughput / throughput.max())
    mbit = profile.base_rate / MBIT
    assert mbit[0, 15] == 25.0  # A–A: 50 / 2
    assert mbit[0, 5] == 15.0  # A–B: min(50, 30) / 2
    assert mbit[5, 10] == 7.5  # B–C
    assert profile.noise_sigma == 0.3


def test_noise_is_lognormal_symmetric_and_seeded():
    profile = load_profile("paper30", 30, seed=7)
    assert profile is not None
    samples = np.array([profile.link_speed(0, 15, t=float(t)) for t in range(4000)]) / (25 * MBIT)
    assert np.std(np.log(samples)) == pytest.approx(0.3, abs=0.02)
    assert profile.link_speed(3, 9, 12.5) == profile.link_speed(9, 3, 12.5)
    assert profile.link_speed(3, 9, 12.5) == profile.link_speed(3, 9, 12.9)  # same 1 s slot


def test_scheduled_and_random_outages():
    base = uniform_profile(3)
    cut = NetworkProfile(
        "cut", base.base_rate, base.compute_speed, outages=(Outage(0, 1, 10.0, 20.0),)
    )
    assert cut.is_up(0, 1, 5.0) and not cut.is_up(1, 0, 15.0) and cut.is_up(0, 2, 15.0)
    flaky = NetworkProfile("flaky", base.base_rate, base.compute_speed, outage_prob=0.5, seed=1)
    downs = [not flaky.is_up(0, 1, float(t)) for t in range(2000)]
    assert np.mean(downs) == pytest.approx(0.5, abs=0.05)
