import numpy as np
import pytest
from numpy.testing import assert_array_equal

from mpls_celery.core.aggregate import Weighting
from mpls_celery.core.errors import CoreValueError
from mpls_celery.core.strategies import STRATEGY_NAMES, WorkerView, make_strategy, uses_rng


def view(s: int = 3, n_layers: int = 4) -> WorkerView:
    rng = np.random.default_rng(0)
    return WorkerView(
        peers=tuple(range(10, 10 + s)),
        bandwidth=np.array([8.0, 1.0, 4.0][:s]),
        divergence=rng.uniform(0, 2, s),
        progress=rng.exponential(1.0, (s, n_layers)),
        layer_bytes=np.array([4.0, 1.0, 2.0, 1.0][:n_layers]),
    )


def test_every_algorithm_is_selectable_by_name():
    assert set(STRATEGY_NAMES) == {
        "mpls", "mpls-peer", "mpls-layer", "rand-mpls", "appg", "netmax", "ad-psgd",
    }  # fmt: skip
    for name in STRATEGY_NAMES:
        plan = make_strategy(name).plan(view(), np.random.default_rng(1))
        assert plan.y.shape == (3, 4)
        assert np.all(plan.y.sum(axis=0) >= 1), name


def test_unknown_name_lists_the_choices():
    with pytest.raises(CoreValueError, match="choose one of: mpls, mpls-peer"):
        make_strategy("lenet")


def test_appg_pulls_everything_from_everyone():
    plan = make_strategy("appg").plan(view(), np.random.default_rng(0))
    assert_array_equal(plan.y, np.ones((3, 4)))
    assert plan.delay == pytest.approx(8.0 / 1.0)


@pytest.mark.parametrize("name", ["netmax", "ad-psgd"])
def test_single_peer_baselines_take_one_whole_model_at_half_weight(name):
    plan = make_strategy(name).plan(view(), np.random.default_rng(0))
    assert plan.weighting is Weighting.HALF
    assert plan.y.sum(axis=1).tolist().count(4) == 1
    assert plan.y.sum() == 4


def test_netmax_prefers_fast_links():
    rng = np.random.default_rng(0)
    picks = [make_strategy("netmax").plan(view(), rng).y.argmax(axis=0)[0] for _ in range(2000)]
    share = np.bincount(picks, minlength=3) / 2000
    np.testing.assert_allclose(share, [8 / 13, 1 / 13, 4 / 13], atol=0.04)


def test_rand_mpls_takes_each_layer_from_exactly_one_peer():
    plan = make_strategy("rand-mpls").plan(view(), np.random.default_rng(0))
    assert_array_equal(plan.y.sum(axis=0), np.ones(4))


def test_no_reachable_peer_keeps_the_local_model():
    empty = WorkerView((), np.zeros(0), np.zeros(0), np.zeros((0, 2)), np.ones(2))
    for name in STRATEGY_NAMES:
        plan = make_strategy(name).plan(empty, np.random.default_rng(0))
        assert plan.y.shape == (0, 2)
        assert plan.layers_by_peer() == {}


def test_ablations_ignore_their_switched_off_factor():
    base = view()
    flat_progress = WorkerView(
        base.peers, base.bandwidth, base.divergence, np.ones((3, 4)), base.layer_bytes
    )
    rng = np.random.default_rng(0)
    assert_array_equal(
        make_strategy("mpls-peer").plan(base, rng).y,
        make_strategy("mpls").plan(flat_progress, rng).y,
    )


class NoDraws(np.random.Generator):
    """A generator that fails the test when drawn from."""

    def __getattribute__(self, name: str):
        raise AssertionError(f"the plan drew from rng ({name})")


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_a_strategy_that_says_it_never_draws_plans_without_rng(name):
    strategy = make_strategy(name)
    if uses_rng(strategy):
        with pytest.raises(AssertionError, match="drew from rng"):
            strategy.plan(view(), NoDraws(np.random.PCG64(0)))
    else:
        assert strategy.plan(view(), NoDraws(np.random.PCG64(0))).y.shape == (3, 4)
