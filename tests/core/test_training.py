"""Local training: plain SGD without torch.optim, to the byte, and without its import cost."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from mpls_celery.core.models import BUILTIN_MODELS, build_model
from mpls_celery.core.training import LocalTrainer, TrainConfig
from tests.conftest import REPO

BATCH, SAMPLES = 32, 256


def ours_and_torchs(
    config: TrainConfig, iterations: int
) -> tuple[LocalTrainer, torch.nn.Module, torch.optim.SGD]:
    """LeNet-5 trained by our LocalTrainer, and the same model, seed and batches by
    torch.optim.SGD with the same settings, its rate set for each iteration as `lr_at` says."""
    torch.manual_seed(0)
    x, y = torch.randn(SAMPLES, 1, 28, 28), torch.randint(0, 10, (SAMPLES,))
    ours, theirs = (build_model(BUILTIN_MODELS["lenet5"], (1, 28, 28), 10, seed=3) for _ in "ab")
    trainer = LocalTrainer(ours, x, y, config, seed=1)
    for k in range(iterations):
        trainer.train(k)
    optimizer = torch.optim.SGD(theirs.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)  # fmt: skip
    order = torch.randperm(SAMPLES, generator=torch.Generator().manual_seed(1))
    for step in range(iterations * config.local_steps):
        for group in optimizer.param_groups:
            group["lr"] = config.lr_at(step // config.local_steps)
        idx = order[BATCH * step : BATCH * (step + 1)]
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(theirs(x[idx]), y[idx]).backward()
        optimizer.step()
    for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    return trainer, theirs, optimizer


@pytest.mark.parametrize(
    ("momentum", "weight_decay"), [(0.0, 0.0), (0.9, 0.0), (0.0, 5e-4), (0.9, 5e-4)]
)
def test_sgd_step_is_torch_optim_sgd_to_the_byte(momentum, weight_decay):
    """Four steps in two local iterations: the momentum buffer carries over between them, as a
    torch optimiser's state does between its steps."""
    config = TrainConfig(batch_size=BATCH, lr=0.05, local_steps=2, momentum=momentum,
                         weight_decay=weight_decay)  # fmt: skip
    trainer, theirs, optimizer = ours_and_torchs(config, iterations=2)
    buffers = [optimizer.state[p].get("momentum_buffer") for p in theirs.parameters()]
    for mine, torchs in zip(trainer.velocity, buffers, strict=True):
        assert (mine is None and torchs is None) or torch.equal(mine, torchs)


def test_training_does_not_import_torch_dynamo():
    """torch.optim's first optimiser imports torch._dynamo: over a second of CPU in every process
    that trains (each Celery slice process, each simulation)."""
    code = (
        "import sys, torch\n"
        "from mpls_celery.core.models import BUILTIN_MODELS, build_model\n"
        "from mpls_celery.core.training import LocalTrainer, TrainConfig\n"
        "x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))\n"
        "model = build_model(BUILTIN_MODELS['mlp'], (1, 28, 28), 10)\n"
        "LocalTrainer(model, x, y, TrainConfig(batch_size=4), 0).train()\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr[-2000:]


def test_a_step_decay_is_torch_optim_sgd_with_its_rate_set_per_iteration():
    config = TrainConfig(batch_size=BATCH, lr=0.1, local_steps=1, momentum=0.9, lr_decay=0.1,
                         lr_decay_every=2)  # fmt: skip
    assert [config.lr_at(k) for k in range(5)] == [0.1, 0.1, 0.1 * 0.1, 0.1 * 0.1, 0.1 * 0.1**2]
    ours_and_torchs(config, iterations=5)


def test_a_run_files_optimiser_fields_reach_both_engines_trainer(tmp_path):
    """`Experiment.train_config` is what the simulator's and the runtime's LocalTrainer get."""
    from mpls_celery.config.run_config import RunConfig
    from mpls_celery.experiment import build_experiment

    cfg = RunConfig(model="mlp", dataset="digits").with_overrides(
        **{"training.momentum": 0.9, "training.weight_decay": 1e-4, "training.lr": 0.2,
           "training.lr_decay": 0.5, "training.lr_decay_every": 10}
    )  # fmt: skip
    config = build_experiment(cfg, tmp_path).train_config
    assert config == TrainConfig(batch_size=64, lr=0.2, local_steps=1, momentum=0.9,
                                 weight_decay=1e-4, lr_decay=0.5, lr_decay_every=10)  # fmt: skip
