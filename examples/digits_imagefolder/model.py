"""A small CNN for one-channel images of any size (here 16×16): two conv layers, one classifier.

Used as `model: model:small_cnn` from run.yaml (the run file's folder is on the import path)."""

from __future__ import annotations

import torch
from torch import nn


class SmallCNN(nn.Module):
    def __init__(self, input_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        channels, height, width = input_shape
        self.conv1 = nn.Conv2d(channels, 8, 3, padding=1)  # (8, H, W) → pool (8, H/2, W/2)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)  # (16, H/2, W/2) → pool (16, H/4, W/4)
        self.head = nn.Linear(16 * (height // 4) * (width // 4), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
        logits: torch.Tensor = self.head(torch.flatten(x, 1))
        return logits


def small_cnn(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return SmallCNN(input_shape, num_classes)
