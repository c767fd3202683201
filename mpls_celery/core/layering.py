"""MPLS layers of a torch model: a Conv/Linear with its bias, plus the BatchNorm that follows a conv
(weight, bias, running mean/var). `num_batches_tracked` never leaves the worker."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

State = Mapping[str, torch.Tensor]
LayerTensors = dict[str, torch.Tensor]

_PRIMARY = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
_NORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_LOCAL_BUFFERS = frozenset({"num_batches_tracked"})


@dataclass(frozen=True)
class Layer:
    """One unit of exchange: `keys` are state_dict keys, in a fixed order."""

    name: str
    keys: tuple[str, ...]


def model_layers(model: nn.Module) -> tuple[Layer, ...]:
    layers: list[Layer] = []
    previous_was_conv = False
    for path, module in model.named_modules():
        own = _own_tensor_keys(path, module)
        if not own:
            continue
        if isinstance(module, _NORM) and previous_was_conv:
            last = layers[-1]
            layers[-1] = Layer(last.name, last.keys + own)
            previous_was_conv = False
            continue
        layers.append(Layer(path or type(module).__name__, own))
        previous_was_conv = isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d))
    return tuple(layers)


def _own_tensor_keys(path: str, module: nn.Module) -> tuple[str, ...]:
    prefix = f"{path}." if path else ""
    names = [n for n, _ in module.named_parameters(recurse=False)]
    names += [n for n, _ in module.named_buffers(recurse=False) if n not in _LOCAL_BUFFERS]
    return tuple(prefix + n for n in names)


def read_layer(state: State, layer: Layer) -> LayerTensors:
    return {key: state[key] for key in layer.keys}


def write_layer(model: nn.Module, layer: Layer, tensors: Mapping[str, torch.Tensor]) -> None:
    write_layers(model, [layer], [tensors])


def write_layers(
    model: nn.Module, layers: Sequence[Layer], tensors: Sequence[Mapping[str, torch.Tensor]]
) -> None:
    """Copy into the model's own storage (no new parameters are created); one state_dict walk for
    all layers, since walking it costs more than copying LeNet's tensors."""
    target = model.state_dict(keep_vars=True)
    with torch.no_grad():
        for layer, values in zip(layers, tensors, strict=True):
            for key in layer.keys:
                target[key].copy_(values[key])


def layer_bytes(
    state: State, layers: Sequence[Layer], wire_itemsize: int | None = None
) -> NDArray[np.float64]:
    """M_l: bytes of layer l as sent (the wire dtype's item size when it differs from storage)."""
    sizes = [
        sum(state[k].numel() * (wire_itemsize or state[k].element_size()) for k in layer.keys)
        for layer in layers
    ]
    return np.asarray(sizes, dtype=np.float64)


@torch.no_grad()
def layer_progress(new: State, old: State, layers: Sequence[Layer]) -> NDArray[np.float64]:
    """g(l) = ‖w_new(l) − w_old(l)‖² over all tensors of the layer (spec step 2)."""
    out = np.empty(len(layers), dtype=np.float64)
    for i, layer in enumerate(layers):
        total = 0.0
        for key in layer.keys:
            diff = new[key].double() - old[key].double()
            total += float(torch.sum(diff * diff))
        out[i] = total
    return out


def snapshot_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of every exchanged tensor, safe to keep while the model trains on."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}
