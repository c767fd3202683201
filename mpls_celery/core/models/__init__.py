"""Models by name. Each takes its dataset's input shape (C, H, W) and class count."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from mpls_celery.core.errors import CoreValueError
from mpls_celery.core.models.lenet5 import LeNet5
from mpls_celery.core.models.mlp import MLP
from mpls_celery.core.models.nin import NIN
from mpls_celery.core.models.resnet18 import ResNet18

_MODELS: dict[str, Callable[[tuple[int, int, int], int], nn.Module]] = {
    "lenet5": LeNet5,
    "nin": NIN,
    "resnet18": ResNet18,
    "mlp": MLP,
}
MODEL_NAMES: tuple[str, ...] = tuple(_MODELS)


def build_model(
    name: str, input_shape: tuple[int, int, int], num_classes: int, seed: int = 0
) -> nn.Module:
    """Same name, shape and seed → the same initial weights on every worker and engine."""
    try:
        factory = _MODELS[name]
    except KeyError:
        raise CoreValueError(
            f"unknown model {name!r}; choose one of: {', '.join(MODEL_NAMES)}"
        ) from None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory(input_shape, num_classes)
