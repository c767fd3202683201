"""An MLP for tabular rows of any width: features → 32 → 16 → classes."""

from __future__ import annotations

import math

from torch import nn


def tabular_mlp(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(math.prod(input_shape), 32),
        nn.ReLU(),
        nn.Linear(32, 16),
        nn.ReLU(),
        nn.Linear(16, num_classes),
    )
