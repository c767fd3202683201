"""Bring-your-own model and data, done wrong: every case is one line on stderr naming the culprit,
exit 2, and nothing started (no run directory). The user's code lives in a module written here,
imported from the current folder as a user's would be."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from mpls_celery.cli.app import main
from mpls_celery.data.files import NPZ_ARRAYS

PLUGIN = """
import numpy as np
import torch
from torch import nn


def good_model(input_shape, num_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(input_shape)), num_classes))


def wrong_input_model(input_shape, num_classes):  # builds, but cannot take the data
    return nn.Sequential(nn.Flatten(), nn.Linear(7, num_classes))


def five_logits_model(input_shape, num_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(input_shape)), 5))


class Linear(nn.Module):
    def __init__(self, features, classes):
        super().__init__()
        self.linear = nn.Linear(features, classes)

    def forward(self, x):
        return self.linear(x)


class PairOut(Linear):
    def forward(self, x):
        return self.linear(x), x.mean()


def pair_model(input_shape, num_classes):
    return PairOut(int(np.prod(input_shape)), num_classes)


class Branchy(Linear):  # Python control flow on a tensor's value: fine, except under vmap
    def forward(self, x):
        return self.linear(x if x.sum() > 0 else -x)


def branchy_model(input_shape, num_classes):
    return Branchy(int(np.prod(input_shape)), num_classes)


def raising_model(input_shape, num_classes):
    raise RuntimeError("out of ideas")


def not_a_model(input_shape, num_classes):
    return "a string"


def lazy_model(input_shape, num_classes):  # sized only by a first forward pass
    return nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes))


def random_model(input_shape, num_classes):
    torch.manual_seed(int(np.random.default_rng().integers(10**6)))  # fresh entropy each call
    return good_model(input_shape, num_classes)


def frozen_model(input_shape, num_classes):
    model = good_model(input_shape, num_classes)
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def data(n_train=200, n_test=50, features=4, classes=3):
    rng = np.random.default_rng(0)
    return (rng.normal(size=(n_train, features)).astype(np.float32),
            rng.integers(0, classes, n_train), rng.normal(size=(n_test, features)).astype(np.float32),
            rng.integers(0, classes, n_test))


def good_data():
    return data()


def mismatched():
    x, y, xt, yt = data()
    return x, y[:-3], xt, yt


def byte_images():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (60, 1, 4, 4), dtype=np.uint8)
    return x, rng.integers(0, 3, 60), x[:12], rng.integers(0, 3, 12)


def conv_model(input_shape, num_classes):
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, num_classes))


def float_labels():
    x, y, xt, yt = data()
    return x, y + 0.5, xt, yt


def nan_features():
    x, y, xt, yt = data()
    x[3, 1] = np.nan
    return x, y, xt, yt


def unseen_test_class():
    x, y, xt, yt = data()
    return x, y % 2, xt, yt


def three_things():
    return data()[:3]


class raising_algo:
    def __init__(self):
        raise RuntimeError("no plan today")


def no_plan_algo():
    return object()


class broken_plan:
    def plan(self, view, rng):
        return view.speeds


class wrong_shape_plan:
    def plan(self, view, rng):
        from mpls_celery.core.aggregate import Weighting
        from mpls_celery.core.strategies import Plan

        return Plan(view.peers, np.ones((len(view.peers), 3), dtype=np.int64), Weighting.UNIFORM)
"""


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "userplug.py").write_text(textwrap.dedent(PLUGIN))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLS_RUNS_DIR", str(tmp_path / "runs"))
    return tmp_path


def sim(capsys, *args: str) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    argv = ["sim", "--workers", "3", "--until", "1s", "--jobs", "1", "--profile", "uniform",
            "--algo", "mpls", "--step-seconds", "0.05", *args]  # fmt: skip
    with pytest.raises(SystemExit) as done:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, f"not one line: {err!r}"
    return int(done.value.code or 0), err


GOOD = ("--model", "userplug:good_model", "--dataset", "userplug:good_data")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        # digits: always installed (a clean clone without the shared MNIST split fails on the data)
        (("--model", "nosuchpkg.models:net", "--dataset", "digits"),
         "model 'nosuchpkg.models:net': no module named 'nosuchpkg'"),
        (("--model", "userplug:nothing", "--dataset", "digits"),
         "model 'userplug:nothing': userplug has no attribute 'nothing'"),
        (("--model", "userplug:raising_model", "--dataset", "userplug:good_data"),
         "model userplug:raising_model: factory((4,), 3) raised RuntimeError: out of ideas"),
        (("--model", "userplug:wrong_input_model", "--dataset", "userplug:good_data"),
         "model userplug:wrong_input_model: a training step on a batch of shape (2, 4) "
         "(torch.float32) raised RuntimeError: mat1 and mat2 shapes cannot be multiplied"),
        (("--model", "userplug:conv_model", "--dataset", "userplug:byte_images"),
         "(integer features reach the model as int64, as token ids do: give images or "
         "measurements as floats, e.g. x / 255)"),
        (("--model", "userplug:five_logits_model", "--dataset", "userplug:good_data"),
         "gave shape (2, 5); a run needs one logit per class, shape (2, 3)"),
        (("--model", "userplug:pair_model", "--dataset", "userplug:good_data"),
         "a batch of shape (2, 4) gave tuple; a run needs one logit per class"),
        (("--model", "userplug:branchy_model", "--dataset", "userplug:good_data", "--engine",
          "batched"),
         "--engine batched: Branchy cannot run under torch.func.vmap (RuntimeError: vmap: It "
         "looks like you're attempting to use a Tensor in some data-dependent control flow"),
        (("--model", "userplug:not_a_model", "--dataset", "userplug:good_data"),
         "the factory returned a str, not a torch nn.Module"),
        (("--model", "userplug:lazy_model", "--dataset", "userplug:good_data"),
         "model userplug:lazy_model: 1.weight is not initialised (a lazy module): size it from "
         "the input_shape the factory is given, or call model(torch.zeros(1, *input_shape))"),
        (("--model", "userplug:random_model", "--dataset", "userplug:good_data"),
         "two builds with seed 1 gave different weights"),
        (("--model", "userplug:frozen_model", "--dataset", "userplug:good_data"),
         "has no trainable parameter to exchange"),
        (("--model", "userplug:good_model", "--dataset", "userplug:mismatched"),
         "train has 200 samples but 197 labels"),
        (("--model", "userplug:good_model", "--dataset", "userplug:float_labels"),
         "y_train holds labels that are not integers"),
        (("--model", "userplug:good_model", "--dataset", "userplug:nan_features"),
         "x_train holds NaN or infinite values"),
        (("--model", "userplug:good_model", "--dataset", "userplug:unseen_test_class"),
         "the test split has labels [2] that the training split (classes 0..1) does not"),
        (("--model", "userplug:good_model", "--dataset", "userplug:three_things"),
         "the loader must return (x_train, y_train, x_test, y_test)"),
        (("--algo", "fedavg", *GOOD),
         "unknown algorithm 'fedavg'; choose from: mpls, mpls-peer, mpls-layer, rand-mpls, appg, "
         "netmax, ad-psgd, or an import path package.module:factory"),
        (("--algo", "mpls,nosuchpkg.algos:greedy", *GOOD),
         "algorithm 'nosuchpkg.algos:greedy': no module named 'nosuchpkg'"),
        (("--algo", "userplug:raising_algo", *GOOD),
         "algorithm userplug:raising_algo: factory() raised RuntimeError: no plan today"),
        (("--algo", "userplug:no_plan_algo", *GOOD),
         "algorithm userplug:no_plan_algo: the factory returned an object, which has no plan()"),
        (("--algo", "userplug:broken_plan", *GOOD),
         "algorithm userplug:broken_plan: plan() on a view of 2 peers and the model's 1 layer "
         "raised AttributeError: 'WorkerView' object has no attribute 'speeds'"),
        (("--algo", "userplug:wrong_shape_plan", *GOOD),
         "algorithm userplug:wrong_shape_plan: plan() must return a Plan for the view's peers "
         "with y of shape (peers, layers) = (2, 1) holding 0 or 1"),
        (("--model", "userplug:good_model", "--dataset", "npz:missing.npz"),
         "npz missing.npz: no such file, nor an .npz"),
    ],
)  # fmt: skip
def test_a_broken_model_or_loader_is_one_line_and_exit_2(plugin_dir, capsys, args, needle):
    code, err = sim(capsys, *args)
    assert code == 2 and needle in err, err
    assert not (plugin_dir / "runs").exists(), "nothing started"


def test_an_npz_without_the_four_arrays(plugin_dir, capsys):
    np.savez(plugin_dir / "two.npz", x_train=np.zeros((10, 2)), y_train=np.zeros(10, int))
    code, err = sim(capsys, "--model", "userplug:good_model", "--dataset", "npz:two.npz")
    assert code == 2 and "no x_test, y_test (an .npz for a run holds x_train, y_train" in err


@pytest.mark.parametrize(
    ("write", "needle"),
    [
        (lambda path: np.save(path.with_suffix(".npy"), np.zeros(3)), "not an .npz"),  # a lone .npy
        (lambda path: path.write_text("x_train,y_train\n1,0\n"), "not an .npz"),
        (lambda path: path.mkdir(), "a folder, not an .npz"),
        (lambda path: np.savez(path, **{k: np.array([{}] * 3, dtype=object) for k in NPZ_ARRAYS}),
         "Object arrays cannot be loaded when allow_pickle=False"),
    ],
)  # fmt: skip
def test_a_file_that_is_no_npz(plugin_dir, capsys, write, needle):
    """Never a traceback, and never a pickle loaded: np.load alone takes a lone .npy too."""
    path = plugin_dir / "data.npz"
    write(path)
    if path.with_suffix(".npy").exists():
        path.with_suffix(".npy").rename(path)
    code, err = sim(capsys, "--model", "userplug:good_model", "--dataset", "npz:data.npz")
    assert code == 2 and "npz data.npz: " in err and needle in err, err


def test_an_image_folder_with_an_empty_class(plugin_dir, capsys):
    from PIL import Image

    for cls in ("cat", "dog"):
        (plugin_dir / "pics" / cls).mkdir(parents=True)
    Image.new("L", (8, 8)).save(plugin_dir / "pics" / "cat" / "a.png")
    code, err = sim(capsys, "--model", "userplug:good_model", "--dataset", "imagefolder:pics")
    assert code == 2 and "class 'dog' has no images" in err


def test_the_good_ones_run(plugin_dir, capsys):
    code, err = sim(capsys, *GOOD, "--json")
    assert code == 0, err
