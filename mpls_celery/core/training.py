"""A local iteration (docs/algorithm.md, "Notation"): `local_steps` SGD steps on the worker's own data, and
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
    momentum: float = 0.0  # the worker's own buffer: never exchanged or averaged
    weight_decay: float = 0.0
    lr_decay: float = 1.0  # the rate is multiplied by this every lr_decay_every local iterations
    lr_decay_every: int | None = None

    def lr_at(self, k: int) -> float:
        """The learning rate of a worker's local iteration k (step decay; constant by default)."""
        if not self.lr_decay_every:
            return self.lr
        return self.lr * self.lr_decay ** (k // self.lr_decay_every)


@dataclass(frozen=True)
class Evaluation:
    accuracy: float
    loss: float


class LocalTrainer:
    """One worker's model, optimiser and batch stream (seeded per worker: runs are repeatable).
    `velocity` is its momentum buffer, one per trainable parameter: its own, kept across its
    aggregations (the model is averaged, the buffer is not); None until its first step."""

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
        self.velocity: list[torch.Tensor | None] = [None] * len(self.params)
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

    def train(self, k: int = 0) -> float:
        """Run local iteration k's local_steps SGD steps; return the mean training loss."""
        config = self.config
        lr = config.lr_at(k)
        self.model.train()
        total = 0.0
        for _ in range(config.local_steps):
            inputs, labels = self._next_batch()
            self.model.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(self.model(inputs), labels)
            loss.backward()  # type: ignore[no-untyped-call]
            sgd_step(self.params, lr, self.velocity, config.momentum, config.weight_decay)
            total += float(loss.detach())
        return total / config.local_steps


@torch.no_grad()
def sgd_step(
    params: Sequence[torch.Tensor],
    lr: float,
    velocity: list[torch.Tensor | None],
    momentum: float = 0.0,
    weight_decay: float = 0.0,
) -> None:
    """θ ← θ − lr·d — torch.optim.SGD's arithmetic without torch.optim, whose first optimiser
    imports torch._dynamo (~900 modules, over a second of CPU in every process that trains).
    `tests/core/test_training.py` holds the two to the same bytes. `velocity`: the momentum
    buffers, one per parameter (updated in place)."""
    for i, param in enumerate(params):
        if param.grad is not None:
            direction, velocity[i] = sgd_direction(
                param, param.grad, velocity[i], momentum, weight_decay
            )
            param.add_(direction, alpha=-lr)


def sgd_direction(
    param: torch.Tensor,
    grad: torch.Tensor,
    buffer: torch.Tensor | None,
    momentum: float,
    weight_decay: float,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """d of θ ← θ − lr·d, and the momentum buffer after this step, as torch.optim.SGD computes
    them (dampening 0, no Nesterov): d = ∇ + λθ; with momentum b ← μb + d (b = d on the first
    step, `buffer` None) and d = b. A buffer given is updated in place."""
    if weight_decay:
        grad = grad.add(param, alpha=weight_decay)
    if not momentum:
        return grad, buffer
    buffer = grad.clone() if buffer is None else buffer.mul_(momentum).add_(grad)
    return buffer, buffer


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
