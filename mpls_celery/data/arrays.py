"""A labelled dataset in memory, whatever its source: features of any shape (image tensors, tabular
rows, token ids) and integer labels, split into train and test. `from_arrays` is the one gate
every source passes (built-ins, .npz files, image folders, a user's loader): it checks what a run
relies on and says in one line what is wrong, naming where the data came from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from mpls_celery.data.stratified import stratified_split
from mpls_celery.errors import ConfigError


@dataclass(frozen=True)
class LabelledData:
    x: torch.Tensor  # (N, *feature shape): float32, or int64 for token ids
    y: torch.Tensor  # (N,) int64

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def subset(self, indices: NDArray[np.int64]) -> LabelledData:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return LabelledData(self.x[idx], self.y[idx])

    def to(self, device: torch.device) -> LabelledData:
        return (
            self if self.x.device == device else LabelledData(self.x.to(device), self.y.to(device))
        )


@dataclass(frozen=True)
class DatasetSplit:
    name: str
    train: LabelledData
    test: LabelledData
    num_classes: int
    input_shape: tuple[int, ...]  # one sample's feature shape

    @property
    def train_labels(self) -> NDArray[np.int64]:
        return self.train.y.numpy().astype(np.int64)


def from_arrays(
    name: str,
    x_train: Any,
    y_train: Any,
    x_test: Any,
    y_test: Any,
    num_classes: int | None = None,
) -> DatasetSplit:
    """ConfigError naming `name` when the arrays cannot make a run: lengths that differ, labels
    that are not integers from 0, NaN or infinite features, shapes that differ between the
    splits, or test labels the model cannot output (classes = those of the training split)."""
    xs = [_features(name, split, x) for split, x in (("train", x_train), ("test", x_test))]
    ys = [_labels(name, split, y) for split, y in (("train", y_train), ("test", y_test))]
    for split, x, y in zip(("train", "test"), xs, ys, strict=True):
        if len(x) != len(y):
            raise ConfigError(f"{name}: {split} has {len(x)} samples but {len(y)} labels")
        if len(y) == 0:
            raise ConfigError(f"{name}: the {split} split is empty")
    if xs[0].shape[1:] != xs[1].shape[1:]:
        raise ConfigError(
            f"{name}: train samples are {tuple(xs[0].shape[1:])}, test samples "
            f"{tuple(xs[1].shape[1:])}"
        )
    classes = num_classes or int(ys[0].max()) + 1
    unseen = sorted(set(ys[1].tolist()) - set(range(classes)))
    if unseen:
        raise ConfigError(
            f"{name}: the test split has labels {unseen[:5]} that the training split (classes "
            f"0..{classes - 1}) does not, so the model cannot output them"
        )
    train, test = LabelledData(xs[0], ys[0]), LabelledData(xs[1], ys[1])
    return DatasetSplit(name, train, test, classes, tuple(int(d) for d in xs[0].shape[1:]))


def _features(name: str, split: str, x: Any) -> torch.Tensor:
    try:
        tensor = torch.as_tensor(np.asarray(x))
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ConfigError(f"{name}: x_{split} is not an array of numbers ({exc})") from None
    if tensor.ndim < 2:
        tensor = tensor.reshape(-1, 1)  # one number per sample
    if tensor.is_floating_point():
        if not bool(torch.isfinite(tensor).all()):
            raise ConfigError(f"{name}: x_{split} holds NaN or infinite values")
        return tensor.to(torch.float32).contiguous()
    if tensor.dtype == torch.bool or not _integer(tensor):
        raise ConfigError(f"{name}: x_{split} is not numeric ({tensor.dtype})")
    return tensor.to(torch.int64).contiguous()  # token ids, counts: models decide


def _labels(name: str, split: str, y: Any) -> torch.Tensor:
    values = np.asarray(y)
    if values.ndim == 2 and values.shape[1] == 1:  # a column of labels
        values = values[:, 0]
    if values.ndim != 1:
        raise ConfigError(f"{name}: y_{split} must be one label per sample, got {values.shape}")
    if values.dtype.kind == "f":
        if not np.all(np.isfinite(values)) or not np.all(values == np.round(values)):
            raise ConfigError(f"{name}: y_{split} holds labels that are not integers")
    elif values.dtype.kind not in "iu":
        raise ConfigError(f"{name}: y_{split} holds labels that are not integers ({values.dtype})")
    labels = values.astype(np.int64)
    if labels.size and labels.min() < 0:
        raise ConfigError(f"{name}: y_{split} holds negative labels (classes count from 0)")
    return torch.as_tensor(labels)


def _integer(tensor: torch.Tensor) -> bool:
    return tensor.dtype in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)


def split_arrays(
    name: str, x: Any, y: Any, test_size: int | float, seed: int = 0, classes: int | None = None
) -> DatasetSplit:
    """One pool of samples, split into train and test (stratified, seeded)."""
    labels = _labels(name, "all", y).numpy()
    try:
        train, test = stratified_split(labels, test_size, seed)
    except ValueError as exc:
        raise ConfigError(f"{name}: cannot split into train and test: {exc}") from exc
    data = np.asarray(x) if not isinstance(x, torch.Tensor) else x
    return from_arrays(name, data[train], labels[train], data[test], labels[test], classes)
