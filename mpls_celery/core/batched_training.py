"""Many workers' local iterations in one vectorised call (`torch.func.vmap` over stacked
weights): the simulator's batched engine. A local update depends only on the model it starts
from and the worker's batches, so copies of one architecture can train side by side; the
arithmetic is `LocalTrainer.train`'s (mean cross-entropy per worker, `sgd_direction`'s SGD step,
each worker's momentum buffer its own), so the result matches the sequential path to float
tolerance (the kernels differ, the math does not).

Only models whose training step is a pure function of weights and batch qualify: no buffers
(a BatchNorm's running statistics change in place) and no random layers (dropout would draw
from one generator for all copies, unlike the sequential path)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call, vmap

from mpls_celery.core.layering import State
from mpls_celery.core.training import Evaluation, TrainConfig, sgd_direction
from mpls_celery.errors import one_line

Batch = tuple[torch.Tensor, torch.Tensor]
Velocity = list[torch.Tensor | None]  # a worker's momentum buffers, LocalTrainer.velocity
_RANDOM = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)
# Most copies in one call: bounds the activations held at once (64 LeNet-5s on 200 test
# samples each: ~60 MB for the first convolution's output).
COPIES_PER_CALL = 64


def batch_blocker(model: nn.Module, sample: Batch | None = None) -> str | None:
    """Why this model cannot train batched, or None when it can. Given a `sample` (a few
    inputs and labels on the model's device), two copies also train one step on it: a forward
    that vmap cannot run (Python control flow on a tensor's value, `.item()`) shows there."""
    name = type(model).__name__
    if any(True for _ in model.buffers()):
        return f"{name} has buffers (e.g. BatchNorm statistics)"
    if any(isinstance(m, _RANDOM) for m in model.modules()):
        return f"{name} has dropout"
    if any(not p.requires_grad for p in model.parameters()):
        return f"{name} has frozen parameters"
    if sample is not None:
        state = {key: p.detach() for key, p in model.named_parameters()}
        try:
            BatchedTrainer(model, TrainConfig(lr=0.0)).train([state, state], [[sample], [sample]])
        except Exception as exc:  # the user's forward, under vmap: its error, in one line
            return f"{name} cannot run under torch.func.vmap ({one_line(exc)})"
    return None


def _step(
    theta: torch.Tensor, direction: torch.Tensor, one_rate: float | None, rates: Sequence[float]
) -> torch.Tensor:
    """θ − lr·d for every copy: sgd_step's arithmetic where all share one rate, else each its
    own (workers at iterations a decay sets apart), broadcast over the copies' first dimension."""
    if one_rate is not None:
        return torch.add(theta, direction, alpha=-one_rate)
    shape = (len(rates),) + (1,) * (theta.dim() - 1)
    lr = torch.tensor(rates, dtype=theta.dtype, device=theta.device).view(shape)
    return theta - lr * direction


@dataclass(frozen=True)
class BatchedResult:
    states: list[dict[str, torch.Tensor]]  # each worker's trained weights (its own tensors)
    losses: list[float]  # each worker's mean training loss
    velocities: list[Velocity]  # each worker's momentum buffers after its steps


class BatchedTrainer:
    """SGD on many copies of `model`'s architecture at once; `model` itself is never changed
    (its weights are only the template functional_call swaps out)."""

    def __init__(
        self, model: nn.Module, config: TrainConfig, copies_per_call: int = COPIES_PER_CALL
    ) -> None:
        self.model, self.config, self.copies_per_call = model, config, copies_per_call
        self.names = [name for name, _ in model.named_parameters()]
        self._forward = vmap(self._one_forward)

    def _one_forward(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = functional_call(self.model, params, (x,))
        return out

    def _stack(self, states: Sequence[State]) -> dict[str, torch.Tensor]:
        return {name: torch.stack([s[name] for s in states]) for name in self.names}

    def _chunks(self, count: int) -> list[slice]:
        step = self.copies_per_call
        return [slice(first, first + step) for first in range(0, count, step)]

    @torch.no_grad()
    def evaluate(
        self, states: Sequence[State], x: torch.Tensor, y: torch.Tensor
    ) -> list[Evaluation]:
        """Model w scored on samples x[w], y[w] (every model the same number): `evaluate`'s
        accuracy and mean loss."""
        self.model.eval()
        out: list[Evaluation] = []
        for part in self._chunks(len(states)):
            logits = self._forward(self._stack(states[part]), x[part])  # (W, S, classes)
            labels = y[part]
            losses = nn.functional.cross_entropy(
                logits.flatten(0, 1), labels.flatten(), reduction="none"
            )
            loss = losses.view(labels.shape).mean(dim=1).tolist()
            accuracy = (logits.argmax(dim=2) == labels).double().mean(dim=1).tolist()
            out += [Evaluation(a, b) for a, b in zip(accuracy, loss, strict=True)]
        return out

    def train(
        self,
        starts: Sequence[State],
        batches: Sequence[Sequence[Batch]],
        velocities: Sequence[Velocity] | None = None,
        lrs: Sequence[float] | None = None,
    ) -> BatchedResult:
        """Worker w starts from `starts[w]` (and its momentum buffers `velocities[w]`) and takes
        one SGD step per batch in `batches[w]` at learning rate `lrs[w]` (default: the config's)
        — every worker the same number of steps, every batch the same shape."""
        if len({len(b) for b in batches}) > 1:
            raise ValueError("every worker needs the same number of local steps")
        none: Velocity = [None] * len(self.names)
        given = list(velocities) if velocities is not None else [none] * len(starts)
        rates = list(lrs) if lrs is not None else [self.config.lr] * len(starts)
        out = BatchedResult([], [], [])
        for part in self._chunks(len(starts)):
            trained = self._train(starts[part], batches[part], given[part], rates[part])
            out.states.extend(trained.states)
            out.losses.extend(trained.losses)
            out.velocities.extend(trained.velocities)
        return out

    def _stack_velocity(self, given: Sequence[Velocity], like: dict[str, torch.Tensor]) -> Velocity:
        """The buffers stacked by parameter; None where no worker has one yet (the first step
        starts them at the gradient), zeros for a worker without one beside others that have
        (μ·0 + d = d: the same first step)."""
        stacked: Velocity = []
        for i, name in enumerate(self.names):
            own = [v[i] for v in given]
            if all(b is None for b in own):
                stacked.append(None)
            else:
                zeros = torch.zeros_like(like[name][0])
                stacked.append(torch.stack([zeros if b is None else b for b in own]))
        return stacked

    def _train(
        self,
        starts: Sequence[State],
        batches: Sequence[Sequence[Batch]],
        given: Sequence[Velocity],
        rates: Sequence[float],
    ) -> BatchedResult:
        steps = len(batches[0])
        config = self.config
        one_rate = rates[0] if len(set(rates)) == 1 else None  # sgd_step's θ + (−lr)·d
        params = self._stack(starts)
        velocity = self._stack_velocity(given, params)
        loss_sums = [0.0] * len(starts)
        self.model.train()
        for step in range(steps):
            x = torch.stack([b[step][0] for b in batches])
            y = torch.stack([b[step][1] for b in batches])
            leaves = {name: p.requires_grad_() for name, p in params.items()}
            logits = self._forward(leaves, x)  # (W, B, classes)
            per_sample = nn.functional.cross_entropy(
                logits.flatten(0, 1), y.flatten(), reduction="none"
            )
            losses = per_sample.view(y.shape).mean(dim=1)  # each worker's own mean loss
            grads = torch.autograd.grad(losses.sum(), list(leaves.values()))
            with torch.no_grad():
                params = {}
                for i, ((name, leaf), grad) in enumerate(zip(leaves.items(), grads, strict=True)):
                    theta = leaf.detach()
                    direction, velocity[i] = sgd_direction(
                        theta, grad, velocity[i], config.momentum, config.weight_decay
                    )
                    params[name] = _step(theta, direction, one_rate, rates)
            loss_sums = [a + b for a, b in zip(loss_sums, losses.tolist(), strict=True)]
        workers = range(len(starts))
        return BatchedResult(
            [{name: params[name][w].clone() for name in self.names} for w in workers],
            [total / steps for total in loss_sums],
            [[None if b is None else b[w].clone() for b in velocity] for w in workers],
        )
