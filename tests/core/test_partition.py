import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpls_celery.core.errors import CoreValueError
from mpls_celery.core.partition import partition

LABELS = np.repeat(np.arange(10), 800)


@pytest.mark.parametrize("kind", ["iid", "noniid", "dirichlet"])
def test_histograms_match_indices_and_seed_is_deterministic(kind):
    a = partition(LABELS, 30, kind, chi=0.7, alpha=0.5, seed=3)
    b = partition(LABELS, 30, kind, chi=0.7, alpha=0.5, seed=3)
    c = partition(LABELS, 30, kind, chi=0.7, alpha=0.5, seed=4)
    for idx, hist in zip(a.indices, a.histograms, strict=True):
        assert hist.sum() == len(idx)
        assert np.array_equal(np.bincount(LABELS[idx], minlength=10), hist)
    assert all(np.array_equal(x, y) for x, y in zip(a.indices, b.indices, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a.indices, c.indices, strict=True))


def test_noniid_gives_each_worker_its_dominant_share():
    part = partition(LABELS, 30, "noniid", chi=0.7, seed=1)
    assert len(set(part.sizes.tolist())) == 1  # equal local sizes
    for worker, hist in enumerate(part.histograms):
        assert hist[worker % 10] / hist.sum() == pytest.approx(0.7, abs=0.03)


def test_iid_has_equal_sizes_and_rejects_too_many_workers():
    part = partition(LABELS, 7, "iid")
    assert set(part.sizes.tolist()) == {8000 // 7}
    with pytest.raises(CoreValueError):
        partition(LABELS[:3], 4, "iid")


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 40), st.floats(0, 1), st.integers(0, 10_000))
def test_noniid_never_repeats_an_index_within_a_worker(workers, chi, seed):
    part = partition(LABELS, workers, "noniid", chi=chi, seed=seed)
    for idx in part.indices:
        assert len(np.unique(idx)) == len(idx)
