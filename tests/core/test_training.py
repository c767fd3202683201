"""Local training: plain SGD without torch.optim, to the byte, and without its import cost."""

from __future__ import annotations

import subprocess
import sys

import torch

from mpls_celery.core.models import BUILTIN_MODELS, build_model
from mpls_celery.core.training import LocalTrainer, TrainConfig
from tests.conftest import REPO


def test_sgd_step_is_torch_optim_sgd_to_the_byte():
    torch.manual_seed(0)
    x, y = torch.randn(256, 1, 28, 28), torch.randint(0, 10, (256,))
    ours, theirs = (build_model(BUILTIN_MODELS["lenet5"], (1, 28, 28), 10, seed=3) for _ in "ab")
    trainer = LocalTrainer(ours, x, y, TrainConfig(batch_size=32, lr=0.05, local_steps=4), seed=1)
    trainer.train()
    optimizer = torch.optim.SGD(theirs.parameters(), lr=0.05)
    generator = torch.Generator().manual_seed(1)
    order = torch.randperm(256, generator=generator)
    for step in range(4):
        idx = order[32 * step : 32 * (step + 1)]
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(theirs(x[idx]), y[idx]).backward()
        optimizer.step()
    for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


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
