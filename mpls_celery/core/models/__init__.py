"""The built-in models by name. Each is a factory `(input_shape, num_classes) -> nn.Module`, the
same contract a user's own model factory meets (`plugins.py` finds those by import path)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import torch
from torch import nn

from mpls_celery.core.models.lenet5 import LeNet5
from mpls_celery.core.models.mlp import MLP
from mpls_celery.core.models.nin import NIN
from mpls_celery.core.models.resnet18 import ResNet18

ModelFactory = Callable[[tuple[int, ...], int], nn.Module]
BUILTIN_MODELS: dict[str, ModelFactory] = {
    "lenet5": LeNet5,
    "nin": NIN,
    "resnet18": ResNet18,
    "mlp": MLP,
}


# torch's generator is process-wide: two threads building models at once (a Celery thread pool
# serving several workers) would draw from it in turn and build different weights
_SEEDED = threading.Lock()


def build_model(
    factory: ModelFactory, input_shape: tuple[int, ...], num_classes: int, seed: int = 0
) -> nn.Module:
    """Same factory, shape and seed → the same initial weights on every worker and engine."""
    with _SEEDED, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory(input_shape, num_classes)
