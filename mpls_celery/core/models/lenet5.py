"""LeNet-5 (docs/algorithm.md, "Models"): 5 MPLS layers; 61,706 parameters on 1×28×28 / 10 classes."""

from __future__ import annotations

import torch
from torch import nn


class LeNet5(nn.Module):
    def __init__(self, input_shape: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        channels, height, width = input_shape
        self.conv1 = nn.Conv2d(channels, 6, 5, padding=2)  # (6, H, W)
        self.conv2 = nn.Conv2d(6, 16, 5)  # (16, H/2-4, W/2-4)
        flat = 16 * ((height // 2 - 4) // 2) * ((width // 2 - 4) // 2)  # 400 on 28×28
        self.fc1 = nn.Linear(flat, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)
        self.pool = nn.MaxPool2d(2)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # ReLU after the pool: the same values and gradients as pool(relu(·)) (max commutes with
        # a monotone function, and ties at ≤ 0 get zero gradient either way), on ¼ of the elements.
        x = self.act(self.pool(self.conv1(x)))
        x = self.act(self.pool(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = self.act(self.fc1(x))
        x = self.act(self.fc2(x))
        logits: torch.Tensor = self.fc3(x)
        return logits
