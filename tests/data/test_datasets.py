from pathlib import Path

import numpy as np
import pytest

from mpls_celery.data import load_builtin as load_dataset
from mpls_celery.errors import ConfigError

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"


def test_digits_load_offline_as_28x28():
    data = load_dataset("digits", Path("/nonexistent"))
    assert (len(data.train), len(data.test)) == (1437, 360)
    assert data.train.x.shape[1:] == (1, 28, 28)
    assert set(np.unique(data.train_labels)) == set(range(10))


def test_digits_read_without_sklearn_are_sklearns_digits():
    """A scikit-learn that moved or changed its digits file fails here, not silently in a run."""
    from sklearn.datasets import load_digits

    from mpls_celery.data.datasets import digits_arrays

    images, target = digits_arrays()
    bunch = load_digits()
    assert np.array_equal(images, bunch.images) and np.array_equal(target, bunch.target)


@pytest.mark.skipif(not (SHARED / "mnist-t10k").is_dir(), reason="shared MNIST split not present")
def test_mnist_test_split_becomes_fixed_stratified_8000_2000():
    data = load_dataset("mnist", SHARED)
    again = load_dataset("mnist", SHARED)
    assert (len(data.train), len(data.test)) == (8000, 2000)
    assert np.array_equal(data.train_labels, again.train_labels)
    shares = np.bincount(data.train_labels) / 8000
    assert shares.min() > 0.08 and shares.max() < 0.12


def test_missing_mnist_names_where_it_looked(tmp_path):
    with pytest.raises(ConfigError, match=str(tmp_path)):
        load_dataset("mnist", tmp_path)


def test_missing_cifar_is_a_one_line_error_naming_the_folder(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_dataset("cifar10", tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert str(tmp_path / "cifar-10-batches-py") in message


def test_synthetic_is_seeded_and_learnable_shape():
    a = load_dataset("synthetic", Path("."), like="cifar10", seed=4, synthetic_size=(200, 50))
    b = load_dataset("synthetic", Path("."), like="cifar10", seed=4, synthetic_size=(200, 50))
    assert a.train.x.shape == (200, 3, 32, 32)
    assert np.array_equal(a.train.x.numpy(), b.train.x.numpy())


def test_unknown_dataset_lists_choices():
    with pytest.raises(ConfigError, match="choose one of: digits, mnist"):
        load_dataset("imagenet", Path("."))


def test_an_image_folder_larger_than_the_open_file_limit_loads(tmp_path):
    """Images are read one open file at a time: a folder of more images than `ulimit -n` (1,024
    for most users) loads (it once failed for a non-root user: every image was held open)."""
    import os
    import resource

    from PIL import Image

    from mpls_celery.data.files import load_image_folder

    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        for i in range(100):
            pixels = (rng.random((8, 8)) * 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / label / f"{i}.png")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    in_use = len(os.listdir("/dev/fd"))  # this process's open files (Linux and macOS)
    resource.setrlimit(resource.RLIMIT_NOFILE, (in_use + 32, hard))
    try:
        data = load_image_folder(tmp_path, test_fraction=0.25, image_size=None, seed=0)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert (len(data.train), len(data.test)) == (150, 50)
