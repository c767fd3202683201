"""MPLS layers of any torch model: the unit a worker pulls from a peer (docs/algorithm.md, "What one
layer is").

The rule, walking the module tree in registration order:
- a layer is the exchanged tensors one module owns directly: its trainable parameters (weight,
  bias, or any nn.Parameter a custom module holds, as a transformer's positional embedding) and
  its floating-point buffers (a BatchNorm's running mean and variance);
- a BatchNorm that directly follows a convolution joins that convolution's layer (it normalises
  exactly that conv's output and is averaged with it);
- a tensor shared by several modules (tied weights: an embedding and an output head) belongs to
  the first module that has it, once; a module left with nothing forms no layer;
- frozen parameters (requires_grad False) and integer buffers (`num_batches_tracked`, position
  ids) never leave the worker: nothing would change them, and integers are not averaged.
So an embedding, a LayerNorm, each Linear inside an attention block, and an attention module's
own in-projection are each one layer: small and large layers differ by orders of magnitude, which
is what the schedule's μ1 = M_l / B_s weighs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from mpls_celery.core.errors import CoreValueError

State = Mapping[str, torch.Tensor]
LayerTensors = dict[str, torch.Tensor]

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_NORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


@dataclass(frozen=True)
class Layer:
    """One unit of exchange: `keys` are state_dict keys, in a fixed order."""

    name: str
    keys: tuple[str, ...]


def model_layers(model: nn.Module) -> tuple[Layer, ...]:
    """The model's layers by the rule above; CoreValueError when none is trainable."""
    layers: list[Layer] = []
    seen: set[int] = set()
    previous_was_conv = False
    for path, module in model.named_modules(remove_duplicate=False):
        own = _own_tensor_keys(path, module, seen)
        if not own:
            continue
        if isinstance(module, _NORM) and previous_was_conv:
            last = layers[-1]
            layers[-1] = Layer(last.name, last.keys + own)
            previous_was_conv = False
            continue
        layers.append(Layer(path or type(module).__name__, own))
        previous_was_conv = isinstance(module, _CONV)
    if not any(p.requires_grad for p in model.parameters()):
        raise CoreValueError(f"{type(model).__name__} has no trainable parameter to exchange")
    return tuple(layers)


def _own_tensor_keys(path: str, module: nn.Module, seen: set[int]) -> tuple[str, ...]:
    """Its exchanged tensors not met before (by identity: a tied weight counts once)."""
    prefix = f"{path}." if path else ""
    tensors: list[tuple[str, torch.Tensor]] = [
        (n, t) for n, t in module.named_parameters(recurse=False) if t.requires_grad
    ]
    tensors += [(n, t) for n, t in module.named_buffers(recurse=False) if t.is_floating_point()]
    keys = []
    for name, tensor in tensors:
        if id(tensor) not in seen:
            seen.add(id(tensor))
            keys.append(prefix + name)
    return tuple(keys)


def read_layer(state: State, layer: Layer) -> LayerTensors:
    return {key: state[key] for key in layer.keys}


def write_layer(model: nn.Module, layer: Layer, tensors: Mapping[str, torch.Tensor]) -> None:
    write_layers(model, [layer], [tensors])


def write_layers(
    model: nn.Module, layers: Sequence[Layer], tensors: Sequence[Mapping[str, torch.Tensor]]
) -> None:
    """Copy into the model's own storage (no new parameters are created); one state_dict walk for
    all layers, since walking it costs more than copying LeNet's tensors."""
    copy_layers(model.state_dict(keep_vars=True), layers, tensors)


@torch.no_grad()
def copy_layers(
    target: State, layers: Sequence[Layer], tensors: Sequence[Mapping[str, torch.Tensor]]
) -> None:
    """write_layers into a model's own tensors as its state_dict(keep_vars=True) gave them
    (a caller that keeps that dict walks the module tree once, not once per iteration)."""
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
    """g(l) = ‖w_new(l) − w_old(l)‖² over all tensors of the layer (Eq. 5)."""
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
