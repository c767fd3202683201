import pytest
from numpy.testing import assert_allclose

from mpls_celery.core.errors import CoreValueError
from mpls_celery.core.selection import label_divergence, layer_probabilities, peer_probabilities


def test_label_divergence_is_l1_of_normalised_histograms():
    dd = label_divergence([10, 0], [[0, 5], [5, 5], [20, 0]])
    assert_allclose(dd, [2.0, 1.0, 0.0])


def test_iid_histograms_give_uniform_divergence_share():
    dd = label_divergence([5, 5, 5], [[5, 5, 5], [1, 1, 1]])
    p = peer_probabilities([1.0, 3.0], dd)
    # DD̄ = 1/S when every DD is 0: p = 0.5 * B̄ + 0.5 * 0.5
    assert_allclose(p, [0.5 * 0.25 + 0.25, 0.5 * 0.75 + 0.25])


def test_peer_probabilities_weigh_speed_and_divergence():
    p = peer_probabilities([1.0, 1.0], [0.0, 2.0], tau1=0.5, tau2=0.5)
    assert_allclose(p, [0.25, 0.75])
    assert_allclose(peer_probabilities([1.0, 3.0], [1.0, 1.0], tau1=1.0, tau2=0.0), [0.25, 0.75])


def test_taus_must_sum_to_one():
    with pytest.raises(CoreValueError, match="sum to 1"):
        peer_probabilities([1.0], [0.0], tau1=0.7, tau2=0.7)


def test_layer_probabilities_normalise_per_layer_and_default_to_uniform():
    q = layer_probabilities([[1.0, 0.0, 3.0], [3.0, 0.0, 1.0]])
    assert_allclose(q, [[0.25, 0.5, 0.75], [0.75, 0.5, 0.25]])


def test_layer_probabilities_reject_negative_progress():
    with pytest.raises(CoreValueError):
        layer_probabilities([[-1.0]])
