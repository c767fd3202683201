"""Eq. 1 (docs/algorithm.md, "Step 9: averaging"), layer by layer: w ← (w̃ + Σ_s y_s(l)·w_s(l)) / (1 + Σ_s y_s(l)); and the
½(w_i + w_j) rule of NetMax / AD-PSGD. Inputs are never modified."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum

import torch

from mpls_celery.core.errors import CoreValueError

LayerTensors = Mapping[str, torch.Tensor]


class Weighting(StrEnum):
    UNIFORM = "uniform"  # Eq. 1: the local layer counts as one more copy
    HALF = "half"  # ½ local + ½ mean of the pulled copies


def stack_copies(copies: Sequence[LayerTensors]) -> tuple[dict[str, torch.Tensor] | None, int]:
    """Per-layer running sum and count: the partial model an aggregation task stores."""
    if not copies:
        return None, 0
    names = copies[0].keys()
    if any(copy.keys() != names for copy in copies[1:]):
        raise CoreValueError("pulled copies of one layer disagree on tensor names")
    total = {k: torch.stack([copy[k].detach() for copy in copies]).sum(dim=0) for k in names}
    return total, len(copies)


@torch.no_grad()
def average_from_sums(
    local: Sequence[LayerTensors],
    sums: Sequence[Mapping[str, torch.Tensor] | None],
    counts: Sequence[int],
    weighting: Weighting | str = Weighting.UNIFORM,
) -> list[dict[str, torch.Tensor]]:
    if not len(local) == len(sums) == len(counts):
        raise CoreValueError("local, sums and counts must have one entry per layer")
    rule = Weighting(weighting)
    out: list[dict[str, torch.Tensor]] = []
    for own, total, count in zip(local, sums, counts, strict=True):
        if total is None or count == 0:
            out.append({k: v.detach().clone() for k, v in own.items()})
            continue
        layer: dict[str, torch.Tensor] = {}
        for key, value in own.items():
            if total[key].shape != value.shape:
                raise CoreValueError(f"{key}: pulled shape {tuple(total[key].shape)} != local")
            layer[key] = _mix(value, total[key].to(value.device, value.dtype), count, rule)
        out.append(layer)
    return out


def _mix(own: torch.Tensor, total: torch.Tensor, count: int, rule: Weighting) -> torch.Tensor:
    if rule is Weighting.HALF:
        return 0.5 * own + 0.5 * total / count
    return (own + total) / (1 + count)


@torch.no_grad()
def average_states(states: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The plain mean of whole models (for evaluating "the averaged model"); integer buffers such
    as num_batches_tracked are taken from the first model."""
    out: dict[str, torch.Tensor] = {}
    for key, first in states[0].items():
        if first.is_floating_point():
            out[key] = torch.stack([s[key] for s in states]).mean(dim=0)
        else:
            out[key] = first.clone()
    return out


def average_layers(
    local: Sequence[LayerTensors],
    pulled: Sequence[Sequence[LayerTensors]],
    weighting: Weighting | str = Weighting.UNIFORM,
) -> list[dict[str, torch.Tensor]]:
    """local[l]: this worker's layer l after training; pulled[l]: the copies pulled for layer l."""
    if len(local) != len(pulled):
        raise CoreValueError("pulled must have one (possibly empty) list per layer")
    stacked = [stack_copies(copies) for copies in pulled]
    return average_from_sums(local, [s for s, _ in stacked], [c for _, c in stacked], weighting)
