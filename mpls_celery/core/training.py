"""A local iteration (docs/algorithm.md, "Notation"): `local_steps` plain SGD steps on the worker's own data, and
evaluation. Shared by the simulator and the Celery runtime so both train identically."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 64
    lr: float = 0.01
    local_steps: int = 1


@dataclass(frozen=True)
class Evaluation:
    accuracy: float
    loss: float


class LocalTrainer:
    """One worker's model, optimiser and batch stream (seeded per worker: runs are repeatable)."""

    def __init__(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        config: TrainConfig,
        seed: int,
    ) -> None:
        self.model = model
        self.x, self.y = x, y
        self.config = config
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.generator = torch.Generator().manual_seed(seed)
        self._order = torch.empty(0, dtype=torch.long)

    def _next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample without replacement within a local epoch, reshuffling at its end."""
        size = min(self.config.batch_size, len(self.y))
        if len(self._order) < size:
            self._order = torch.randperm(len(self.y), generator=self.generator)
        idx, self._order = self._order[:size], self._order[size:]
        return self.x[idx], self.y[idx]

    def next_batches(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """One iteration's batches, drawn as `train` draws them (the batched engine trains later)."""
        return [self._next_batch() for _ in range(self.config.local_steps)]

    def train(self) -> float:
        """Run local_steps SGD steps; return the mean training loss."""
        self.model.train()
        total = 0.0
        for _ in range(self.config.local_steps):
            inputs, labels = self._next_batch()
            self.model.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(self.model(inputs), labels)
            loss.backward()  # type: ignore[no-untyped-call]
            sgd_step(self.params, self.config.lr)
            total += float(loss.detach())
        return total / self.config.local_steps


@torch.no_grad()
def sgd_step(params: Sequence[torch.Tensor], lr: float) -> None:
    """Plain SGD, θ ← θ − lr·∇ — torch.optim.SGD's arithmetic without torch.optim, whose first
    optimiser imports torch._dynamo (~900 modules, over a second of CPU in every process that
    trains). `tests/core/test_training.py` holds the two to the same bytes."""
    for param in params:
        if param.grad is not None:
            param.add_(param.grad, alpha=-lr)


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 1000) -> Evaluation:
    model.eval()
    correct, loss_sum = 0, 0.0
    for start in range(0, len(y), batch):
        logits = model(x[start : start + batch])
        labels = y[start : start + batch]
        loss_sum += float(nn.functional.cross_entropy(logits, labels, reduction="sum"))
        correct += int((logits.argmax(dim=1) == labels).sum())
    n = max(len(y), 1)
    return Evaluation(accuracy=correct / n, loss=loss_sum / n)
