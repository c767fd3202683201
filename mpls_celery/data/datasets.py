"""The built-in datasets by name → in-memory train/test tensors (normalised float32) with integer
labels. Other sources (.npz files, image folders, a user's loader) are in `sources.py`."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray

from mpls_celery.catalog import DATASET_NAMES
from mpls_celery.data.arrays import DatasetSplit, from_arrays, split_arrays
from mpls_celery.data.idx import read_idx
from mpls_celery.data.local_files import MNIST_HELD_OUT, mnist_dirs, mnist_files
from mpls_celery.errors import ConfigError

_FETCH_HINT = "set MPLS_DATA_DIR to where it is, or download it: mpls data fetch {}"
MNIST_STATS = (0.1307, 0.3081)
CIFAR_STATS = ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
SHAPES: dict[str, tuple[tuple[int, int, int], int]] = {
    "digits": ((1, 28, 28), 10),
    "mnist": ((1, 28, 28), 10),
    "cifar10": ((3, 32, 32), 10),
    "cifar100": ((3, 32, 32), 100),
}


def load_builtin(
    name: str,
    data_dir: Path,
    *,
    like: str = "mnist",
    synthetic_size: tuple[int, int] = (4000, 1000),
    seed: int = 0,
) -> DatasetSplit:
    if name == "digits":
        return _digits()
    if name == "mnist":
        return _mnist(Path(data_dir))
    if name in ("cifar10", "cifar100"):
        return _cifar(name, Path(data_dir))
    if name == "synthetic":
        return _synthetic(like, synthetic_size, seed)
    raise ConfigError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASET_NAMES)}")


def _normalise_gray(images: NDArray[np.uint8] | NDArray[np.float64], scale: float) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(images, dtype=np.float32) / scale).unsqueeze(1)
    return (x - MNIST_STATS[0]) / MNIST_STATS[1]


def _split(name: str, x: torch.Tensor, y: NDArray[np.int64], test_size: int) -> DatasetSplit:
    """A fixed (seed 0) stratified split of one pool."""
    return split_arrays(name, x, y, test_size, seed=0, classes=SHAPES[name][1])


def _digits() -> DatasetSplit:
    """scikit-learn's bundled 1,797 real 8×8 digits, bilinearly resized to 28×28."""
    images, target = digits_arrays()
    small = torch.as_tensor(images, dtype=torch.float32).unsqueeze(1) / 16.0
    big = torch.nn.functional.interpolate(
        small, size=(28, 28), mode="bilinear", align_corners=False
    )
    x = (big - MNIST_STATS[0]) / MNIST_STATS[1]
    return _split("digits", x.contiguous(), target, test_size=360)


def digits_arrays() -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """The 8×8 images and labels from the CSV inside scikit-learn's package, read without
    importing scikit-learn (over a second of CPU in every process that loads digits); through
    its loader where that file is not where it has always been."""
    spec = importlib.util.find_spec("sklearn")
    for root in (spec.submodule_search_locations or []) if spec else []:
        csv = Path(root) / "datasets" / "data" / "digits.csv.gz"
        if csv.is_file():
            table = np.loadtxt(csv, delimiter=",")
            return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images, bunch.target.astype(np.int64)


def _mnist(data_dir: Path) -> DatasetSplit:
    found = mnist_files(data_dir)
    test_images, test_labels = found["test"]
    if test_images is None or test_labels is None:
        raise ConfigError(
            f"mnist: no t10k-images-idx3-ubyte[.gz] under {data_dir} (looked in "
            f"{', '.join(str(d) for d in mnist_dirs(data_dir))}); {_FETCH_HINT.format('mnist')}"
        )
    x_test = _normalise_gray(read_idx(test_images), 255.0)
    y_test = read_idx(test_labels).astype(np.int64)
    train_images, train_labels = found["train"]
    if train_images is None or train_labels is None:
        # Only the official test split is present: a fixed stratified 8,000 / 2,000 split of it.
        return _split("mnist", x_test, y_test, test_size=MNIST_HELD_OUT)
    x_train = _normalise_gray(read_idx(train_images), 255.0)
    y_train = read_idx(train_labels).astype(np.int64)
    return from_arrays("mnist", x_train, y_train, x_test, y_test, num_classes=10)


def _cifar(name: str, data_dir: Path) -> DatasetSplit:
    from torchvision.datasets import CIFAR10, CIFAR100

    cls = CIFAR10 if name == "cifar10" else CIFAR100
    folder = data_dir / cls.base_folder
    try:
        train = cls(str(data_dir), train=True)
        test = cls(str(data_dir), train=False)
    except RuntimeError as exc:
        raise ConfigError(
            f"{name}: dataset files not found or corrupted in {folder} (expected the python "
            f"version, e.g. {cls.filename} extracted there); {_FETCH_HINT.format(name)}"
        ) from exc
    mean = torch.tensor(CIFAR_STATS[0]).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR_STATS[1]).view(1, 3, 1, 1)

    def tensors(ds: CIFAR10) -> torch.Tensor:
        x = torch.as_tensor(ds.data).permute(0, 3, 1, 2).float() / 255.0
        return ((x - mean) / std).contiguous()

    classes = SHAPES[name][1]
    return from_arrays(name, tensors(train), train.targets, tensors(test), test.targets, classes)


def _synthetic(like: str, size: tuple[int, int], seed: int) -> DatasetSplit:
    """Class prototypes (smooth random patterns) plus noise: learnable, seeded, any shape."""
    if like not in SHAPES:
        raise ConfigError(f"synthetic: unknown shape {like!r}; choose one of: {', '.join(SHAPES)}")
    shape, classes = SHAPES[like]
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.randn(classes, shape[0], 7, 7, generator=gen)
    prototypes = torch.nn.functional.interpolate(coarse, size=shape[1:], mode="bilinear")
    total = size[0] + size[1]
    labels = torch.arange(total) % classes
    labels = labels[torch.randperm(total, generator=gen)]
    x = prototypes[labels] + 0.8 * torch.randn(total, *shape, generator=gen)
    n = size[0]
    return from_arrays("synthetic", x[:n], labels[:n], x[n:], labels[n:], num_classes=classes)
