"""A node's pull result, taken and prepared off its critical path: while the node trains, a thread
waits on its mailbox, decodes the pulled sums and computes the part of Eq. 1 that needs no trained
layers (WorkerStep.premix). The node takes it after training, where it used to wait on the mailbox
itself: the result, and the model mixed from it, are the same; only the waiting and the CPU moved
beside the training."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import torch

from mpls_celery.runtime.worker.beside import Beside
from mpls_celery.runtime.worker.codec import decode_tensors
from mpls_celery.runtime.worker.layout import Layout
from mpls_celery.runtime.worker.messages import PullResult

Sums = list[dict[str, torch.Tensor] | None]


@dataclass(frozen=True)
class Received:
    result: PullResult
    sums: Sums  # per layer: the decoded sum of the pulled copies, on the model's device
    counts: list[int]  # copies per layer; 0 where no sum came back
    premixed: list[dict[str, torch.Tensor]] | None  # WorkerStep.premix of those sums

    @property
    def mixed_layers(self) -> list[bool]:
        return [count > 0 for count in self.counts]


def decode_sums(
    result: PullResult, layout: Layout, run_id: str, device: torch.device
) -> tuple[Sums, list[int]]:
    """Each layer's sum, verified (SnapshotError on a corrupt one), and its count."""
    sums: Sums = []
    counts = list(result.counts)
    for l_idx, (count, blob) in enumerate(zip(counts, result.sums, strict=True)):
        if count and blob:
            tensors, _ = decode_tensors(blob, layout[l_idx], {"run": run_id})
            sums.append({k: v.to(device, non_blocking=True) for k, v in tensors.items()})
        else:
            sums.append(None)
            counts[l_idx] = 0
    return sums, counts


class Receiver(Beside):
    """Two threads: one takes the iteration's pull, the other lets the next iteration's go
    ahead of a wait its node gave up on; `stop` (set on close) ends such waits."""

    def __init__(self) -> None:
        super().__init__("mpls-receiver", threads=2)
        self.stop = threading.Event()

    def close(self, wait: float = 0.0) -> None:
        self.stop.set()
        super().close(wait)
