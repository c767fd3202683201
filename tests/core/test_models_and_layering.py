from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn

from mpls_celery.core.errors import CoreValueError
from mpls_celery.core.layering import (
    layer_bytes,
    layer_progress,
    model_layers,
    read_layer,
    snapshot_state,
    write_layer,
)
from mpls_celery.core.models import BUILTIN_MODELS, LeNet5, build_model, in_fast_layout
from mpls_celery.errors import ConfigError
from mpls_celery.plugins import model_factory, weights_hash
from mpls_celery.runtime.worker.codec import encode_tensors


@pytest.mark.parametrize(
    ("name", "shape", "classes", "layers", "params"),
    [
        ("lenet5", (1, 28, 28), 10, 5, 61_706),
        ("nin", (3, 32, 32), 10, 9, 966_986),
        ("resnet18", (3, 32, 32), 100, 21, 11_220_132),
        ("mlp", (1, 28, 28), 10, 2, 50_890),
    ],
)
def test_layer_counts_params_and_forward(name, shape, classes, layers, params):
    model = build_model(BUILTIN_MODELS[name], shape, classes)
    assert len(model_layers(model)) == layers
    assert sum(p.numel() for p in model.parameters()) == params
    assert model(torch.zeros(2, *shape)).shape == (2, classes)


def test_same_seed_same_weights_and_unknown_name_lists_choices():
    a = build_model(BUILTIN_MODELS["lenet5"], (1, 28, 28), 10, seed=3).state_dict()
    b = build_model(BUILTIN_MODELS["lenet5"], (1, 28, 28), 10, seed=3).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ConfigError, match="choose one of: lenet5, nin, resnet18, mlp, or an"):
        model_factory("lenet")


def _lenet_as_specified(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The spec's order: conv, ReLU, max-pool (LeNet5.forward pools first)."""
    x = nn.functional.max_pool2d(torch.relu(model.conv1(x)), 2)
    x = nn.functional.max_pool2d(torch.relu(model.conv2(x)), 2)
    x = torch.relu(model.fc1(torch.flatten(x, 1)))
    return model.fc3(torch.relu(model.fc2(x)))


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_lenet_pooling_before_relu_gives_the_same_outputs_and_gradients_bit_for_bit(layout):
    model = build_model(BUILTIN_MODELS["lenet5"], (1, 28, 28), 10, seed=5)
    model = model.to(memory_format=layout)
    # A blank background (like MNIST's) gives equal conv outputs, i.e. ties in every pooling
    # window there, at each channel's bias (positive for some channels, negative for others).
    x = torch.zeros(16, 1, 28, 28)
    x[:, :, 8:20, 8:20] = torch.randint(-2, 3, (16, 1, 12, 12)).float()
    y = torch.randint(0, 10, (16,))
    results = []
    for forward in (model, lambda t: _lenet_as_specified(model, t)):
        model.zero_grad()
        logits = forward(x)
        nn.functional.cross_entropy(logits, y).backward()
        results.append((logits.detach(), [p.grad.clone() for p in model.parameters()]))
    (ours, our_grads), (spec, spec_grads) = results
    assert torch.equal(ours, spec)
    assert all(torch.equal(a, b) for a, b in zip(our_grads, spec_grads, strict=True))


def test_built_in_cnns_run_channels_last_on_a_cpu_and_nothing_seen_outside_changes():
    """The layout is the CPU's fast path for built-in CNNs only (a user's forward may `.view` an
    activation; a GPU is unmeasured); the weights' hash, the codec's bytes and a training step's
    values do not depend on it (the step's within float rounding)."""
    cpu, shape = torch.device("cpu"), (1, 28, 28)
    fast = in_fast_layout(build_model(LeNet5, shape, 10, seed=3), LeNet5, cpu)
    plain = build_model(LeNet5, shape, 10, seed=3)
    assert fast.conv2.weight.is_contiguous(memory_format=torch.channels_last)
    assert not fast.conv2.weight.is_contiguous()
    assert weights_hash(fast) == weights_hash(plain)
    fast_state, plain_state = fast.state_dict(), plain.state_dict()
    for layer in model_layers(plain):
        ours, theirs = read_layer(fast_state, layer), read_layer(plain_state, layer)
        assert encode_tensors(ours, {"layer": 0}) == encode_tensors(theirs, {"layer": 0})
    x, y = torch.randn(32, *shape), torch.randint(0, 10, (32,))
    for model in (fast, plain):
        nn.functional.cross_entropy(model(x), y).backward()
    for a, b in zip(fast.parameters(), plain.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-7)

    @dataclass  # eq=True: unhashable, as a user's callable may be
    class UsersLeNet:
        def __call__(self, input_shape: tuple[int, ...], classes: int) -> nn.Module:
            return LeNet5(input_shape, classes)

    for factory, device in ((UsersLeNet(), cpu), (LeNet5, torch.device("cuda"))):
        kept = in_fast_layout(build_model(factory, shape, 10), factory, device)
        assert kept.conv2.weight.is_contiguous()


def test_batchnorm_joins_its_conv_and_num_batches_tracked_stays_local():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Linear(2, 2))
    layers = model_layers(model)
    assert [layer.keys for layer in layers] == [
        ("0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var"),
        ("3.weight", "3.bias"),
    ]
    sizes = layer_bytes(model.state_dict(), layers)
    assert sizes.tolist() == [(18 + 2 + 2 * 4) * 4, (4 + 2) * 4]
    assert layer_bytes(model.state_dict(), layers, wire_itemsize=2).tolist() == [56, 12]


def test_progress_is_squared_distance_and_write_layer_copies_in_place():
    model = build_model(BUILTIN_MODELS["mlp"], (1, 28, 28), 10)
    layers = model_layers(model)
    before = snapshot_state(model)
    moved = {k: v + 0.5 for k, v in read_layer(before, layers[1]).items()}
    weight_storage = model.fc2.weight
    write_layer(model, layers[1], moved)
    assert model.fc2.weight is weight_storage
    g = layer_progress(model.state_dict(), before, layers)
    assert g[0] == 0.0
    assert g[1] == pytest.approx(0.25 * (64 * 10 + 10))


def load_example(name: str, module: str):  # type: ignore[no-untyped-def]
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "examples" / name / f"{module}.py"
    spec = importlib.util.spec_from_file_location(f"example_{name}_{module}", path)
    assert spec and spec.loader
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


def test_a_transformer_is_layered_by_the_rule():
    """One layer per module that owns exchanged tensors: the model's own positional table, the
    embedding, and per block the attention in-projection (MultiheadAttention's own parameters),
    its out-projection, both feed-forward linears and both LayerNorms; then the final norm and
    the head."""
    tiny = load_example("transformer_sequences", "model").tiny_transformer
    model = build_model(tiny, (16,), 4, seed=1)
    layers = model_layers(model)
    block = ["self_attn", "self_attn.out_proj", "linear1", "linear2", "norm1", "norm2"]
    assert [layer.name for layer in layers] == [
        "TinyTransformer", "embed",
        *(f"blocks.layers.{i}.{part}" for i in range(2) for part in block),
        "norm", "head",
    ]  # fmt: skip
    assert layers[0].keys == ("position",)
    assert layers[2].keys == ("blocks.layers.0.self_attn.in_proj_weight",
                              "blocks.layers.0.self_attn.in_proj_bias")  # fmt: skip
    state = model.state_dict()
    exchanged = {key for layer in layers for key in layer.keys}
    assert sum(state[k].numel() for k in exchanged) == sum(p.numel() for p in model.parameters())
    assert model(torch.zeros(3, 16, dtype=torch.long)).shape == (3, 4)


class Tied(nn.Module):
    """An embedding tied to the output head, a conv with its BatchNorm, a frozen table and an
    integer buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 8)
        self.conv = nn.Conv1d(8, 8, 1)
        self.bn = nn.BatchNorm1d(8)
        self.head = nn.Linear(8, 10, bias=False)
        self.head.weight = self.embed.weight  # tied
        self.frozen = nn.Parameter(torch.ones(3), requires_grad=False)
        self.register_buffer("positions", torch.arange(5))


def test_tied_weights_count_once_and_frozen_or_integer_tensors_stay_home():
    layers = model_layers(Tied())
    assert [(layer.name, layer.keys) for layer in layers] == [
        ("embed", ("embed.weight",)),
        ("conv", ("conv.weight", "conv.bias", "bn.weight", "bn.bias", "bn.running_mean",
                  "bn.running_var")),
    ]  # fmt: skip


def test_a_model_with_nothing_to_train_is_refused():
    frozen = nn.Linear(3, 2).requires_grad_(False)
    with pytest.raises(CoreValueError, match="no trainable parameter"):
        model_layers(frozen)
