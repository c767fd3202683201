"""The NumPy stratified split is scikit-learn's, index for index: every dataset's split (and so
every recorded result) stays what it was while no process imports scikit-learn to make it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.model_selection import train_test_split

from mpls_celery.data.stratified import stratified_split


def sklearn_split(labels: np.ndarray, test_size: int | float, seed: int) -> tuple:  # type: ignore[type-arg]
    train, test = train_test_split(
        np.arange(len(labels)), test_size=test_size, stratify=labels, random_state=seed
    )
    return np.sort(train), np.sort(test)


@settings(max_examples=150, deadline=None)
@given(
    counts=st.lists(st.integers(2, 40), min_size=2, max_size=12),
    share=st.floats(0.05, 0.6),
    as_int=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
    shuffle_seed=st.integers(0, 1000),
)
def test_the_split_is_sklearns(counts, share, as_int, seed, shuffle_seed):
    labels = np.random.default_rng(shuffle_seed).permutation(
        np.repeat(np.arange(len(counts)), counts)
    )
    n = len(labels)
    test_size: int | float = max(1, round(share * n)) if as_int else share
    try:
        expected = sklearn_split(labels, test_size, seed)
    except ValueError:
        with pytest.raises(ValueError):
            stratified_split(labels, test_size, seed)
        return
    ours = stratified_split(labels, test_size, seed)
    assert np.array_equal(ours[0], expected[0]) and np.array_equal(ours[1], expected[1])


def test_the_built_in_splits_are_sklearns():
    """The digits split (1,797 samples, 360 held out, seed 0), which the golden recording uses."""
    from mpls_celery.data.datasets import digits_arrays

    _, target = digits_arrays()
    ours = stratified_split(target, 360, 0)
    expected = sklearn_split(target, 360, 0)
    assert np.array_equal(ours[0], expected[0]) and np.array_equal(ours[1], expected[1])


def test_a_class_of_one_is_one_line_naming_it():
    with pytest.raises(ValueError, match=r"classes \[2\] have one sample"):
        stratified_split(np.array([0, 0, 1, 1, 2, 0, 1]), 0.4, 0)
