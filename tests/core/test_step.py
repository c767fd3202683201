"""The shared worker step: link models, Eq. 5's window, and the two mixing orders."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mpls_celery.core.aggregate import Weighting
from mpls_celery.core.link_model import pull_times
from mpls_celery.core.semantics import LinkModel, Mixing, ProgressWindow, Semantics
from mpls_celery.core.step import (
    PeerReport,
    Progress,
    WorkerStep,
    eval_slice,
)
from mpls_celery.core.strategies import make_strategy


def step(**semantics) -> WorkerStep:
    return WorkerStep(
        worker=0,
        strategy=make_strategy("appg"),
        semantics=Semantics(**semantics),
        layer_bytes=np.array([100.0, 300.0]),
        divergence=np.array([0.0, 0.5, 1.0]),
    )


def report(worker, last, total, bandwidth=1e6):
    return PeerReport(worker, Progress(np.array(last, float), np.array(total, float)), bandwidth)


def test_independent_links_take_bytes_over_rate():
    np.testing.assert_allclose(pull_times([100, 0, 50], [10, 5, 25], shared=False), [10, 0, 2])


def test_shared_links_split_the_inbound_rate_max_min_fairly():
    # capacity = fastest link (100); the slow flow keeps its 10, the other gets the rest (90),
    # then the whole 100 once the slow one is done
    np.testing.assert_allclose(pull_times([10, 100], [10, 100], shared=True), [1.0, 1.1])
    # equal flows on equal links: each at half the rate
    np.testing.assert_allclose(pull_times([50, 50], [100, 100], shared=True), [1.0, 1.0])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1e6), st.floats(1e3, 1e8)), min_size=1, max_size=12))
def test_shared_links_are_never_faster_than_independent_nor_than_the_inbound_rate(flows):
    sizes = np.array([f[0] for f in flows])
    rates = np.array([f[1] for f in flows])
    shared = pull_times(sizes, rates, shared=True)
    alone = pull_times(sizes, rates, shared=False)
    assert np.all(shared >= alone * (1 - 1e-9))
    assert shared.max() >= sizes.sum() / rates.max() * (1 - 1e-9)


def test_shared_links_lengthen_the_plan_delay_of_a_fan_in():
    peers = [report(1, [1, 1], [1, 1]), report(2, [1, 1], [1, 1])]
    alone = step(links=LinkModel.INDEPENDENT)
    shared = step(links=LinkModel.SHARED)
    rng = np.random.default_rng(0)
    plan_alone = alone.plan(alone.view(peers), rng)
    plan_shared = shared.plan(shared.view(peers), rng)
    assert plan_alone.delay == pytest.approx(400 / 1e6)
    assert plan_shared.delay == pytest.approx(800 / 1e6)


def test_since_last_pull_window_is_the_progress_between_two_aggregations():
    s = step(progress_window=ProgressWindow.SINCE_LAST_PULL)
    first = s.view([report(1, [1, 2], [5, 6]), report(2, [0, 1], [0, 1])])
    np.testing.assert_allclose(first.progress, [[5, 6], [0, 1]])  # since the run's start
    second = s.view([report(1, [1, 2], [7, 9]), report(2, [0, 1], [0, 1])])
    np.testing.assert_allclose(second.progress, [[2, 3], [0, 0]])  # peer 2 did not move


def test_version_window_is_the_last_versions_progress():
    s = step(progress_window=ProgressWindow.VERSION)
    s.view([report(1, [1, 2], [5, 6])])
    np.testing.assert_allclose(s.view([report(1, [1, 2], [7, 9])]).progress, [[1, 2]])


def layers(*values):
    return [{"w": torch.tensor([v])} for v in values]


def test_average_then_step_adds_the_undiluted_local_update_to_the_averaged_start():
    s = step(mixing=Mixing.AVERAGE_THEN_STEP)
    start, trained = layers(1.0, 1.0), layers(3.0, 5.0)
    sums = [{"w": torch.tensor([7.0])}, None]  # layer 0: two copies summing to 7; layer 1: none
    out = s.mix(start, trained, sums, [2, 0], Weighting.UNIFORM)
    assert out[0]["w"].item() == pytest.approx((1 + 7) / 3 + (3 - 1))
    assert torch.equal(out[1]["w"], trained[1]["w"])  # nothing pulled: exactly the trained layer
    assert start[0]["w"].item() == 1.0 and trained[0]["w"].item() == 3.0  # inputs untouched


def test_train_then_average_is_spec_step_9_as_written():
    s = step(mixing=Mixing.TRAIN_THEN_AVERAGE)
    out = s.mix(layers(1.0), layers(3.0), [{"w": torch.tensor([7.0])}], [2], Weighting.UNIFORM)
    assert out[0]["w"].item() == pytest.approx((3 + 7) / 3)


def test_half_weighting_under_average_then_step():
    s = step(mixing=Mixing.AVERAGE_THEN_STEP)
    out = s.mix(layers(2.0), layers(2.5), [{"w": torch.tensor([4.0])}], [1], Weighting.HALF)
    assert out[0]["w"].item() == pytest.approx(0.5 * 2 + 0.5 * 4 + 0.5)


@pytest.mark.parametrize("mixing", list(Mixing))
def test_a_mix_premixed_beside_training_is_the_mix_bit_for_bit(mixing):
    """What a node averages over the start while it trains (premix) and finishes after it gives
    the mixed layers the one-call mix gives; train-then-average has nothing to premix."""
    s = step(mixing=mixing)
    gen = torch.Generator().manual_seed(3)
    start = [{"w": torch.randn(40, generator=gen)} for _ in range(2)]
    trained = [{"w": v["w"] + 0.1 * torch.randn(40, generator=gen)} for v in start]
    sums = [{"w": torch.randn(40, generator=gen)}, None]
    premixed = s.premix(start, sums, [3, 0], Weighting.UNIFORM)
    assert (premixed is None) == (mixing is Mixing.TRAIN_THEN_AVERAGE)
    split = s.mix(start, trained, sums, [3, 0], Weighting.UNIFORM, premixed)
    whole = s.mix(start, trained, sums, [3, 0], Weighting.UNIFORM)
    assert all(torch.equal(a["w"], b["w"]) for a, b in zip(split, whole, strict=True))


def test_eval_slices_are_disjoint_while_they_fit_the_test_set():
    slices = [set(eval_slice(w, 1000, 200).tolist()) for w in range(5)]
    assert set().union(*slices) == set(range(1000))
    assert len(eval_slice(0, 50, 200)) == 50
