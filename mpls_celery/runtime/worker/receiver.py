"""A node's pull result, taken and prepared off its critical path: while the node trains, a thread
waits on its mailbox, decodes the pulled sums and computes the part of Eq. 1 that needs no trained
layers (WorkerStep.premix). The node takes it after training, where it used to wait on the mailbox
itself: the result, and the model mixed from it, are the same; only the waiting and the CPU moved
beside the training."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

import torch

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


Job = tuple[Callable[[], Received | None], Future[Received | None]]


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


class Receiver:
    """Two daemon threads on one queue: one takes the iteration's pull, the other lets the next
    iteration's go ahead of a wait its node gave up on; `stop` (set on close) ends such waits.
    Daemons, as the publisher's: a wait in progress never holds up the process's exit."""

    THREADS = 2

    def __init__(self) -> None:
        self.stop = threading.Event()
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []

    def submit(self, receive: Callable[[], Received | None]) -> Future[Received | None]:
        if not self._threads:
            self._threads = [
                threading.Thread(target=self._run, daemon=True, name=f"mpls-receiver-{i}")
                for i in range(self.THREADS)
            ]
            for thread in self._threads:
                thread.start()
        future: Future[Received | None] = Future()
        self._jobs.put((receive, future))
        return future

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            receive, future = job
            try:
                future.set_result(receive())
            except BaseException as exc:  # raised in the node's thread, by future.result()
                future.set_exception(exc)

    def close(self) -> None:
        self.stop.set()
        for _ in self._threads:
            self._jobs.put(None)
        self._threads = []
