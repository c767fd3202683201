"""Training that blows up is caught from what the engines already have: the loss, and g (Eq. 5)."""

import math

import numpy as np
import pytest

from mpls_celery.core.divergence import Diverged, check_finite


def test_finite_training_passes():
    check_finite(0, 5, 0.01, 2.3, np.array([0.1, 0.0, 4.0]))
    check_finite(0, 5, 0.01, 2.3)


@pytest.mark.parametrize("loss", [math.nan, math.inf, -math.inf])
def test_a_loss_that_is_not_finite_names_worker_iteration_and_lr(loss):
    with pytest.raises(
        Diverged,
        match=rf"worker 3 diverged at iteration 7: its training loss is {loss} \(learning rate 1000;",
    ):
        check_finite(3, 7, 1000.0, loss, np.zeros(2))


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_weights_that_are_not_finite_show_in_g(bad):
    with pytest.raises(
        Diverged, match="worker 1 diverged at iteration 0: its weights are no longer finite"
    ):
        check_finite(1, 0, 0.5, 0.7, np.array([0.2, bad]))
