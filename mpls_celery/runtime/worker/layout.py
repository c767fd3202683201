"""The model's MPLS layer layout (tensor names and shapes per layer), stored with the run so the
aggregation tasks can verify snapshots without building the model or loading data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mpls_celery.core.layering import Layer

Layout = list[dict[str, tuple[int, ...]]]  # per layer: tensor name → shape


def layout_of(layers: Sequence[Layer], state: dict[str, Any]) -> Layout:
    return [{key: tuple(state[key].shape) for key in layer.keys} for layer in layers]


def layout_to_json(layout: Layout) -> list[list[list[Any]]]:
    return [[[name, list(shape)] for name, shape in layer.items()] for layer in layout]


def layout_from_json(data: list[list[list[Any]]]) -> Layout:
    return [{str(name): tuple(int(d) for d in shape) for name, shape in layer} for layer in data]
