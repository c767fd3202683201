"""The Python API runs the same code paths as `mpls sim` / `mpls up`, and takes a model factory
or data loader as an object where it can (the simulator) and says why where it cannot."""

from __future__ import annotations

import re

import numpy as np
import orjson
import pytest
import torch
import yaml
from safetensors import safe_open
from torch import nn

from mpls_celery import api
from mpls_celery.core.models import BUILTIN_MODELS, build_model
from mpls_celery.errors import ConfigError
from mpls_celery.telemetry.rundir import METRICS


def blobs() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Two Gaussian blobs in 5 dimensions: learnable in a few steps."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 600)
    x = rng.normal(size=(600, 5)).astype(np.float32) + 2.0 * y[:, None]
    return x[:500], y[:500], x[500:], y[500:]


def linear(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(input_shape)), num_classes))


CONFIG = api.RunConfig(workers=4, model="mlp", dataset="digits").with_overrides(
    **{"topology.kind": "full", "network.profile": "uniform", "training.lr": 0.1}
)


@pytest.mark.slow
def test_simulate_takes_objects_and_matches_the_cli_path(tmp_path):
    result = api.simulate(
        CONFIG, ("mpls", "netmax"), until=1.0, out=tmp_path, model=linear, data=blobs,
        step_seconds=0.02, target_acc=0.6,
    )  # fmt: skip
    assert (result.run_dir / METRICS).exists()
    assert set(result.summary["algorithms"]) == {"mpls", "netmax"}
    assert result.summary["algorithms"]["mpls"]["final_mean_acc"] > 0.6
    seen: dict[str, list[float]] = {}
    again = api.simulate(  # the algorithms as the command line writes them
        CONFIG, "mpls, netmax", until=1.0, out=tmp_path / "again", model=linear, data=blobs,
        step_seconds=0.02, target_acc=0.6,
        progress=lambda algo, t, epoch: seen.setdefault(algo, []).append(t),
    )  # fmt: skip
    assert (again.run_dir / METRICS).read_bytes() == (result.run_dir / METRICS).read_bytes()
    assert set(seen) == {"mpls", "netmax"}
    assert all(ts == sorted(ts) and 0 < ts[-1] <= 1.0 for ts in seen.values())

    curve = result.evaluations("mpls")
    assert curve and all(e.algo == "mpls" for e in curve)
    assert [e.t for e in curve] == sorted(e.t for e in curve)
    assert curve[-1].mean_acc == result.summary["algorithms"]["mpls"]["final_mean_acc"]
    assert len(result.evaluations()) == len(curve) + len(result.evaluations("netmax"))
    iterations = [r for r in result.records() if isinstance(r, api.IterationRecord)]
    assert len(iterations) == sum(a["iterations"] for a in result.summary["algorithms"].values())

    # the run's model: the workers' final models averaged, as its last evaluation scored it
    assert result.summary["models"] == {
        "mpls": "models/mpls.safetensors", "netmax": "models/netmax.safetensors"
    }  # fmt: skip
    model = linear((5,), 2)
    model.load_state_dict(result.model_state("mpls"))
    x_test, y_test = blobs()[2:]
    with torch.no_grad():
        accuracy = (
            model(torch.as_tensor(x_test, dtype=torch.float32)).argmax(1).numpy() == y_test
        ).mean()
    assert accuracy == pytest.approx(curve[-1].avg_model_acc, abs=1 / len(y_test))
    with pytest.raises(ConfigError, match="name the algorithm whose model you want: mpls, netmax"):
        result.model_state()
    assert not (result.run_dir / "models" / "mpls").exists()  # each worker's: on request
    for algorithm in ("mpls", "netmax"):  # each model file names the algorithm that trained it
        with safe_open(str(result.run_dir / "models" / f"{algorithm}.safetensors"), "pt") as f:
            about = f.metadata()
        assert about["algorithm"] == orjson.loads(about["run_config"])["algorithm"] == algorithm


def test_each_workers_model_is_saved_on_request(tmp_path):
    result = api.simulate(CONFIG, "mpls", until=0.2, out=tmp_path, step_seconds=0.02,
                          save_workers=True)  # fmt: skip
    own = [result.model_state(worker=w)["fc1.weight"] for w in range(CONFIG.workers)]
    assert torch.equal(torch.stack(own).mean(0), result.model_state()["fc1.weight"])


def test_a_run_file_or_its_fields_stand_for_the_config(tmp_path):
    """`simulate("run.yaml")` reads it as `--config` does, its model imported from beside it."""
    (tmp_path / "api_run_file_model.py").write_text(
        "from torch import nn\n"
        "def net(input_shape, num_classes):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(784, num_classes))\n"
    )
    fields = {"workers": 2, "model": "api_run_file_model:net", "dataset": "digits", "seed": 4}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(fields))
    limits = {"until": 0.3, "step_seconds": 0.02}
    from_file = api.simulate(tmp_path / "run.yaml", out=tmp_path / "file", **limits)
    from_fields = api.simulate(fields, out=tmp_path / "fields", **limits)
    from_config = api.simulate(api.RunConfig(**fields), out=tmp_path / "config", **limits)
    metrics = {(r.run_dir / METRICS).read_bytes() for r in (from_file, from_fields, from_config)}
    assert len(metrics) == 1 and from_file.summary["algorithms"]["mpls"]["iterations"] > 0


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({"workers": 0}, "config: workers: Input should be greater than or equal to 1"),
        ("no-such-run.yaml", "no-such-run.yaml: cannot read (No such file or directory)"),
        (3, "config: expected a RunConfig, a mapping of run-file fields or a run file's path, "
            "got int"),
    ],
)  # fmt: skip
def test_a_config_that_is_no_config_is_a_config_error(tmp_path, config, problem):
    with pytest.raises(ConfigError, match=re.escape(problem)):
        api.simulate(config, out=tmp_path)
    with pytest.raises(ConfigError, match=re.escape(problem)):
        api.run(config, iterations=1)
    assert not any(tmp_path.iterdir()), "nothing started"


def test_run_asks_for_import_paths_not_objects():
    with pytest.raises(ConfigError, match="give import paths in the config"):
        api.run(CONFIG, model=linear)


def test_training_that_diverges_is_a_failed_result_naming_it(tmp_path):
    result = api.simulate(
        CONFIG.with_overrides(model="lenet5", **{"training.lr": 1000.0}), until=5.0,
        out=tmp_path, step_seconds=0.02,
    )  # fmt: skip
    assert result.failed
    assert re.match(r"mpls: worker \d diverged at iteration \d+", result.summary["reason"])


def test_an_unknown_algorithm_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown algorithm"):
        api.simulate(CONFIG, ("mpls", "fedavg"))
    with pytest.raises(ConfigError, match="unknown algorithm 'fedavg'"):
        api.simulate(CONFIG, "mpls,fedavg")


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ({"until": -3.0}, "options: until: Input should be greater than 0"),
        ({"step_seconds": 0.0}, "options: step_seconds: Input should be greater than 0"),
        ({"eval_every": 0.0}, "options: eval_every: Input should be greater than 0"),
        ({"epochs": 0}, "options: epochs: Input should be greater than or equal to 1"),
        ({"target_acc": 1.5}, "options: target_acc: Input should be less than or equal to 1"),
        ({"jobs": 0}, "options: jobs: Input should be greater than or equal to 1"),
    ],
)
def test_a_limit_no_simulation_can_have_is_a_config_error(tmp_path, given, problem):
    """The checks the command line's flags have, for the API too: a step of no time ran."""
    with pytest.raises(ConfigError) as info:
        api.simulate(CONFIG, out=tmp_path, **given)
    assert str(info.value) == problem
    assert not any(tmp_path.iterdir()), "nothing started"


def test_run_checks_its_iterations_before_it_starts_anything(isolated_env):
    with pytest.raises(ConfigError, match=r"training\.iterations: Input should be greater than or"):
        api.run(CONFIG, iterations=0)


@pytest.mark.integration
@pytest.mark.slow
def test_run_trains_for_real(isolated_env):
    result = api.run(CONFIG.with_overrides(workers=3), iterations=3, save_workers=True)
    assert result.summary["reason"] == "every worker finished" and not result.failed
    assert (result.run_dir / METRICS).exists()
    assert result.summary["models"] == {"mpls": "models/mpls.safetensors"}
    state = result.model_state()  # the one algorithm's: the workers' final models averaged
    own = [result.model_state(worker=w)["fc1.weight"] for w in range(3)]
    assert torch.equal(torch.stack(own).mean(0), state["fc1.weight"])
    model = build_model(BUILTIN_MODELS["mlp"], (1, 28, 28), 10, seed=CONFIG.seed)
    assert not torch.equal(state["fc1.weight"], model.state_dict()["fc1.weight"])  # trained
    model.load_state_dict(state)
