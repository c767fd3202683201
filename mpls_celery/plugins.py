"""Where a run's model and data come from: the built-ins by name, or the user's own code by
import path (`package.module:factory`, `package.module:loader`), or objects passed to the Python
API. This is the boundary where user code runs, so everything that can go wrong with it becomes
one ConfigError line naming the culprit — nothing is started before it passes:

- a model factory is called as `factory(input_shape, num_classes)` under the run's seed; it must
  return an nn.Module with a trainable layer, and the same weights every time (so every worker and
  both engines start from one model), that takes a batch of the run's data and gives one logit
  per class (one training step on two samples shows it);
- a data loader is called as `loader()` and returns `(x_train, y_train, x_test, y_test)`, arrays
  or tensors, checked by `data.arrays.from_arrays`."""

from __future__ import annotations

import hashlib
import importlib
import itertools
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn
from torch.nn.parameter import is_lazy

from mpls_celery.catalog import IMPORT_PATH, MODEL_NAMES, STRATEGY_NAMES
from mpls_celery.config.run_config import DataFiles
from mpls_celery.core.errors import CoreValueError
from mpls_celery.core.layering import Layer, model_layers
from mpls_celery.core.models import BUILTIN_MODELS, ModelFactory, build_model
from mpls_celery.core.strategies import Plan, Strategy, WorkerView, make_strategy
from mpls_celery.data.arrays import DatasetSplit, LabelledData, from_arrays
from mpls_celery.data.datasets import load_builtin
from mpls_celery.data.files import load_image_folder, load_npz
from mpls_celery.errors import ConfigError, one_line

DataLoader = Callable[[], Any]


def is_import_path(text: str) -> bool:
    return IMPORT_PATH.fullmatch(text) is not None


def add_import_dirs(dirs: Iterable[Path | str]) -> list[str]:
    """Put folders on this process's import path (first), as `mpls up` does for its Celery
    processes through PYTHONPATH; the absolute folders added."""
    added = [str(Path(d).resolve()) for d in dirs]
    for folder in reversed(added):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    return added


def given_import_dirs(dirs: Iterable[Path] | None) -> list[Path]:
    """The folders a user named to import from (--import, `import_dirs=`); ConfigError for one
    that is no folder, which would otherwise surface later as a model that cannot be imported,
    with a hint to add the very folder given."""
    folders = list(dirs or [])
    for folder in folders:
        if not folder.is_dir():
            raise ConfigError(f"import folder {str(folder)!r}: no such folder")
    return folders


def import_object(path: str, what: str) -> Any:
    """`package.module:attribute` (dots in the attribute reach inside it)."""
    module_name, _, attribute = path.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"{what} {path!r}: no module named {exc.name!r} (is its folder on the import path? "
            "the run file's folder and the current one are; add others with --import DIR)"
        ) from None
    except Exception as exc:  # the user's module failed while importing: say how, in one line
        raise ConfigError(
            f"{what} {path!r}: importing {module_name} raised {one_line(exc)}"
        ) from None
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ConfigError(f"{what} {path!r}: {module_name} has no attribute {attribute!r}")
        target = getattr(target, part)
    if not callable(target):
        raise ConfigError(f"{what} {path!r}: {attribute} is not callable")
    return target


# algorithms --------------------------------------------------------------------------------------
def strategy_for(spec: str, tau1: float, tau2: float, fill: bool, n_layers: int) -> Strategy:
    """A built-in algorithm by name, or the user's own: `factory()` from its import path, which
    returns an object whose `plan(view, rng)` returns a Plan (core/strategies/base.py) — tried
    here on a view of two peers, so a broken one fails in one line before any run starts."""
    if spec in STRATEGY_NAMES:
        return make_strategy(spec, tau1, tau2, fill)
    factory = import_object(spec, "algorithm")
    try:
        strategy = factory()
    except Exception as exc:  # the user's factory failed: its error, in one line
        raise ConfigError(f"algorithm {spec}: factory() raised {one_line(exc)}") from None
    if not callable(getattr(strategy, "plan", None)):
        kind = _with_article(type(strategy).__name__)
        raise ConfigError(f"algorithm {spec}: the factory returned {kind}, which has no plan()")
    _try_plan(strategy, spec, n_layers)
    return strategy  # type: ignore[no-any-return]


def _try_plan(strategy: Any, spec: str, n_layers: int) -> None:
    view = WorkerView(
        peers=(1, 2),
        bandwidth=np.array([1e6, 4e6]),
        divergence=np.array([0.2, 0.6]),
        progress=np.ones((2, n_layers)),
        layer_bytes=np.full(n_layers, 1e4),
    )
    layers = f"{n_layers} layer{'s' if n_layers != 1 else ''}"
    try:
        plan = strategy.plan(view, np.random.default_rng(0))
    except Exception as exc:
        raise ConfigError(
            f"algorithm {spec}: plan() on a view of 2 peers and the model's {layers} raised "
            f"{one_line(exc)}"
        ) from None
    if (
        not isinstance(plan, Plan)
        or plan.peers != view.peers
        or not isinstance(plan.y, np.ndarray)
        or plan.y.shape != (2, n_layers)
        or not np.isin(plan.y, (0, 1)).all()
    ):
        raise ConfigError(
            f"algorithm {spec}: plan() must return a Plan for the view's peers with y of shape "
            f"(peers, layers) = (2, {n_layers}) holding 0 or 1 — make_plan(view, y, weighting) "
            "builds one"
        )


# models ------------------------------------------------------------------------------------------
def model_factory(spec: str | ModelFactory) -> ModelFactory:
    if not isinstance(spec, str):
        return spec
    if spec in BUILTIN_MODELS:
        return BUILTIN_MODELS[spec]
    if is_import_path(spec):
        factory: ModelFactory = import_object(spec, "model")
        return factory
    raise ConfigError(
        f"unknown model {spec!r}; choose one of: {', '.join(MODEL_NAMES)}, or an import path "
        "package.module:factory"
    )


class CheckedModel(NamedTuple):
    model: nn.Module
    layers: tuple[Layer, ...]
    weights_hash: str  # of its initial weights: every worker's must match


def checked_model(
    factory: ModelFactory,
    input_shape: tuple[int, ...],
    num_classes: int,
    seed: int,
    label: str,
    trial: tuple[LabelledData, torch.device] | None = None,
) -> CheckedModel:
    """The model, its layers and its weights' hash, once the factory has shown it builds one,
    with something to train, the same weights for the same seed and — given a `trial`: the run's
    data and device — one training step and one evaluation there."""
    first = _build(factory, input_shape, num_classes, seed, label)
    again = _build(factory, input_shape, num_classes, seed, label)
    digest = weights_hash(first)
    if digest != weights_hash(again):
        raise ConfigError(
            f"model {label}: two builds with seed {seed} gave different weights; the factory "
            "must draw its initial weights from torch's global generator (which the run seeds)"
        )
    try:
        layers = model_layers(first)
    except CoreValueError as exc:
        raise ConfigError(f"model {label}: {exc}") from None
    if trial is not None:
        _probe(again, *trial, num_classes, label)
    return CheckedModel(first, layers, digest)


_INTEGER_FEATURES = (
    " (integer features reach the model as int64, as token ids do: give images or measurements "
    "as floats, e.g. x / 255)"
)


def _probe(
    model: nn.Module, data: LabelledData, device: torch.device, classes: int, label: str
) -> None:
    """A model that cannot take the data fails here, in one line, not later in every worker
    (in the runtime: in slices that fail until the worker is given up). On the throw-away second
    build, with torch's CPU generator put back (dropout draws from it; on a GPU the draws are
    the same in every run)."""
    model.to(device)
    x, y = data.x[:2].to(device), data.y[:2].to(device)
    shape = tuple(x.shape)
    with torch.random.fork_rng(devices=[]):
        for training in (True, False):
            what = "training step" if training else "evaluation"
            model.train(training)
            try:
                with torch.set_grad_enabled(training):
                    out = model(x)
                    logits = isinstance(out, torch.Tensor) and out.shape == (len(y), classes)
                    if logits and training:
                        nn.functional.cross_entropy(out, y).backward()  # type: ignore[no-untyped-call]
            except Exception as exc:
                hint = "" if x.is_floating_point() else _INTEGER_FEATURES
                raise ConfigError(
                    f"model {label}: a {what} on a batch of shape {shape} ({x.dtype}) raised "
                    f"{one_line(exc)}{hint}"
                ) from None
            if not logits:
                got = (
                    f"shape {tuple(out.shape)}"
                    if isinstance(out, torch.Tensor)
                    else type(out).__name__
                )
                raise ConfigError(
                    f"model {label}: a batch of shape {shape} gave {got}; a run needs one logit "
                    f"per class, shape ({len(y)}, {classes})"
                )


def _build(
    factory: ModelFactory, shape: tuple[int, ...], classes: int, seed: int, label: str
) -> nn.Module:
    try:
        model = build_model(factory, shape, classes, seed)
    except Exception as exc:  # the user's factory failed: its error, in one line
        raise ConfigError(
            f"model {label}: factory({shape}, {classes}) raised {one_line(exc)}"
        ) from None
    if not isinstance(model, nn.Module):
        kind = _with_article(type(model).__name__)
        raise ConfigError(f"model {label}: the factory returned {kind}, not a torch nn.Module")
    tensors = itertools.chain(model.named_parameters(), model.named_buffers())
    lazy = next((name for name, tensor in tensors if is_lazy(tensor)), None)
    if lazy is not None:  # its size is unknown until a forward pass: nothing to publish or hash
        raise ConfigError(
            f"model {label}: {lazy} is not initialised (a lazy module): size it from the "
            f"input_shape the factory is given, or call model(torch.zeros(1, *input_shape)) in "
            "the factory before returning it"
        )
    return model


def _with_article(noun: str) -> str:
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def weights_hash(model: nn.Module) -> str:
    """A short fingerprint of a model's initial state: workers compare theirs with the run's."""
    digest = hashlib.sha256()
    for key, tensor in model.state_dict().items():
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def model_label(spec: str | Callable[..., Any]) -> str:
    """How a model (or loader) is named in messages and manifests."""
    if isinstance(spec, str):
        return spec
    return f"{getattr(spec, '__module__', '?')}:{getattr(spec, '__qualname__', repr(spec))}"


# data --------------------------------------------------------------------------------------------
def load_data(
    spec: str | DataFiles, data_dir: Path, seed: int, loader: DataLoader | None = None
) -> DatasetSplit:
    """A built-in by name, data files, a loader by import path — or `loader`, an object."""
    if loader is not None:
        return loaded_data(loader, model_label(loader))
    if isinstance(spec, DataFiles):
        if spec.kind == "npz":
            return load_npz(spec.path)
        return load_image_folder(spec.path, spec.test_fraction, spec.image_size, seed)
    if is_import_path(spec):
        return loaded_data(import_object(spec, "dataset"), spec)
    return load_builtin(spec, data_dir, seed=seed)


def loaded_data(loader: DataLoader, label: str) -> DatasetSplit:
    """A user's loader, called and checked."""
    try:
        arrays = loader()
    except Exception as exc:
        raise ConfigError(f"dataset {label}: the loader raised {one_line(exc)}") from None
    if not isinstance(arrays, tuple | list) or len(arrays) != 4:
        raise ConfigError(
            f"dataset {label}: the loader must return (x_train, y_train, x_test, y_test), "
            f"got {type(arrays).__name__}"
        )
    return from_arrays(f"dataset {label}", *arrays)
