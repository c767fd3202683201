import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from mpls_celery.core.errors import CoreValueError
from mpls_celery.core.schedule import pull_delay, schedule, schedule_layers, schedule_matrices


def uniform(s: int, n_layers: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full(s, 1.0 / s), np.full((s, n_layers), 1.0 / s)


def test_two_equal_speed_peers_split_the_layers():
    p, q = uniform(2, 4)
    result = schedule([1.0, 1.0, 1.0, 1.0], [1.0, 1.0], p, q)
    assert_array_equal(result.y, [[1, 0, 1, 0], [0, 1, 0, 1]])
    assert result.makespan == 2.0  # half of APPG's 4.0


def test_slow_peer_is_retired_by_the_inverse_sqrt_rule():
    p, q = uniform(2, 4)
    result = schedule([1.0] * 4, [10.0, 1.0], p, q)  # E(slow) = 0.1 <= 1/sqrt(2)
    assert result.retired == (1,)
    assert_array_equal(result.y, [[1, 1, 1, 1], [0, 0, 0, 0]])
    assert result.makespan == pytest.approx(0.4)


def test_masked_pair_is_never_used_even_when_faster():
    g = np.array([[1.0, 1.0], [0.0, 1.0]])  # peer 1 did not move layer 0
    q = g / g.sum(axis=0)
    p = np.array([0.5, 0.5])
    mats = schedule_matrices([1.0, 1.0], [1.0, 100.0], p, q)
    assert mats.masked[1, 0]
    y = schedule_layers([1.0, 1.0], [1.0, 100.0], p, q)
    assert y[1, 0] == 0
    assert y[0, 0] == 1


def test_phase_two_adds_copies_without_raising_the_makespan():
    p, q = uniform(2, 3)
    result = schedule([2.0, 2.0, 2.0], [1.0, 2.0], p, q)
    # Phase 1: the fast peer owns everything (3 s); the retired slow peer still fits one layer.
    assert_array_equal(result.owner, [1, 1, 1])
    assert_array_equal(result.y, [[1, 0, 0], [1, 1, 1]])
    assert pull_delay(result.y, [2.0, 2.0, 2.0], [1.0, 2.0]) == pytest.approx(3.0)


def test_no_reachable_peer_means_no_pull():
    result = schedule([1.0, 2.0], np.zeros(0), np.zeros(0), np.zeros((0, 2)))
    assert result.y.shape == (0, 2)
    assert pull_delay(result.y, [1.0, 2.0], np.zeros(0)) == 0.0


def test_one_peer_gives_every_layer():
    y = schedule_layers([5.0, 1.0, 3.0], [0.5], [1.0], [[0.0, 1.0, 1.0]])
    assert_array_equal(y, [[1, 1, 1]])


def test_bad_shapes_are_named():
    with pytest.raises(CoreValueError, match="q has shape"):
        schedule_layers([1.0, 1.0], [1.0, 1.0], [0.5, 0.5], np.ones((2, 3)))
    with pytest.raises(CoreValueError, match="bandwidth"):
        schedule_layers([1.0], [1.0, -1.0], [0.5, 0.5], np.ones((2, 1)))


@st.composite
def instances(draw, max_peers: int = 40, max_layers: int = 60):
    s = draw(st.integers(1, max_peers))
    n_layers = draw(st.integers(1, max_layers))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    layer_bytes = rng.uniform(1e3, 1e7, n_layers)
    bandwidth = rng.uniform(1e5, 1e8, s)
    p = rng.dirichlet(np.ones(s))
    g = rng.exponential(1.0, (s, n_layers)) * (rng.random((s, n_layers)) > 0.2)
    q = g / np.where(g.sum(axis=0) > 0, g.sum(axis=0), 1.0)
    q[:, g.sum(axis=0) == 0] = 1.0 / s
    return layer_bytes, bandwidth, p, q


@settings(max_examples=150, deadline=None)
@given(instances())
def test_properties_hold_on_random_instances(instance):
    layer_bytes, bandwidth, p, q = instance
    result = schedule(layer_bytes, bandwidth, p, q)
    y = result.y
    assert y.shape == q.shape
    assert set(np.unique(y)) <= {0, 1}
    assert np.all(y.sum(axis=0) >= 1), "every layer is pulled at least once"
    if len(bandwidth) >= 2:
        masked = schedule_matrices(layer_bytes, bandwidth, p, q).masked
        assert not np.any(y[masked]), "y respects the θ mask"
    assert pull_delay(y, layer_bytes, bandwidth) == pytest.approx(result.makespan, rel=1e-9)
    again = schedule(layer_bytes, bandwidth, p, q)
    assert_array_equal(again.y, y)


@settings(max_examples=60, deadline=None)
@given(instances(max_peers=8, max_layers=12))
def test_makespan_never_exceeds_pulling_everything_from_the_best_single_allowed_peer(instance):
    layer_bytes, bandwidth, p, q = instance
    result = schedule(layer_bytes, bandwidth, p, q)
    mats = schedule_matrices(layer_bytes, bandwidth, p, q)
    # Phase 1 only assigns layer l to a peer with E > 1/√S, i.e. μ1 < √S·φ(l): no peer's load can
    # exceed √S times the serial sum of the fastest pulls.
    serial_fastest = mats.pull_time.min(axis=0).sum()
    assert result.makespan <= serial_fastest * (1 + 1e-9) * np.sqrt(len(bandwidth))


def test_without_phase_two_each_layer_comes_from_exactly_its_owner():
    layer_bytes, bandwidth = [2.0, 2.0, 2.0], [1.0, 2.0]
    p, q = uniform(2, 3)
    full = schedule(layer_bytes, bandwidth, p, q)
    lean = schedule(layer_bytes, bandwidth, p, q, fill=False)
    assert_array_equal(lean.owner, full.owner)
    assert_array_equal(lean.y.sum(axis=0), [1, 1, 1])
    assert lean.makespan == full.makespan
