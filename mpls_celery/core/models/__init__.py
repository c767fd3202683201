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


# Built-in models whose convolutions run faster on a CPU with their weights channels-last: oneDNN
# then keeps every activation in that layout instead of converting it at each convolution, and
# max-pooling runs vectorised over channels. Measured on a 2-core AMD EPYC, one thread, batch 64
# (scripts/bench_sim.py prints LeNet-5's step and evaluation both ways): LeNet-5's SGD step
# 1.15-1.24x and its evaluation 2.5x faster, NIN's 1.5x / 1.6x. Left out: ResNet-18 (1.03x, within
# noise, and its snapshots would pay a layout copy each), a user's model (its forward may `.view`
# an activation, which fails on a channels-last tensor), and GPUs (not measured).
CHANNELS_LAST_ON_CPU: tuple[ModelFactory, ...] = (LeNet5, NIN)

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


def in_fast_layout(model: nn.Module, factory: ModelFactory, device: torch.device) -> nn.Module:
    """The model in the memory layout its device runs fastest (CHANNELS_LAST_ON_CPU). A layout
    changes no value: state dicts, the codec's bytes and the weights' hash are the same; float
    sums inside a convolution may round differently, as on another CPU."""
    # by identity: a user's factory may be an unhashable callable (a dataclass instance)
    if device.type == "cpu" and any(factory is ours for ours in CHANNELS_LAST_ON_CPU):
        return model.to(memory_format=torch.channels_last)
    return model
