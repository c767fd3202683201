"""Network-in-Network (docs/algorithm.md, "Models"): 9 MPLS layers; 966,986 parameters on CIFAR-10."""

from __future__ import annotations

import torch
from torch import nn


def _mlpconv(in_ch: int, widths: tuple[int, int, int], kernel: int) -> list[nn.Module]:
    first, second, third = widths
    return [
        nn.Conv2d(in_ch, first, kernel, padding=kernel // 2), nn.ReLU(),
        nn.Conv2d(first, second, 1), nn.ReLU(),
        nn.Conv2d(second, third, 1), nn.ReLU(),
    ]  # fmt: skip


class NIN(nn.Module):
    def __init__(self, input_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        channels = input_shape[0]
        self.features = nn.Sequential(
            *_mlpconv(channels, (192, 160, 96), 5),
            nn.MaxPool2d(3, stride=2, padding=1),  # 32 → 16
            nn.Dropout(0.5),
            *_mlpconv(96, (192, 192, 192), 5),
            nn.AvgPool2d(3, stride=2, padding=1),  # 16 → 8
            nn.Dropout(0.5),
            *_mlpconv(192, (192, 192, num_classes), 3),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (B, classes, h, w)
        return x.mean(dim=(2, 3))  # global average pool
