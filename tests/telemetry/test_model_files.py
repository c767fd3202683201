"""The model a run leaves in its run directory: the workers' models averaged, whole or not at all,
loadable without this package."""

from __future__ import annotations

import orjson
import pytest
import torch
from safetensors import safe_open
from torch import nn

from mpls_celery.errors import MplsError, RunNotFound
from mpls_celery.telemetry.model_files import (
    load_averaged_model,
    model_path,
    save_averaged_model,
)


class Tied(nn.Module):
    """Two names for one weight (a tied decoder), and an integer buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.encode = nn.Linear(3, 3)
        self.decode = nn.Linear(3, 3)
        self.decode.weight = self.encode.weight
        self.register_buffer("steps", torch.tensor(7))


def test_the_average_of_the_workers_models_is_saved_with_what_ran(tmp_path):
    torch.manual_seed(0)
    models = [Tied() for _ in range(3)]
    states = [m.state_dict() for m in models]
    path = save_averaged_model(tmp_path, "mpls", [states[0], None, *states[1:]], {"workers": 4})
    assert path == model_path(tmp_path, "mpls") and not list(path.parent.glob("*.partial"))
    loaded = load_averaged_model(tmp_path, "mpls")
    mean = torch.stack([s["encode.weight"] for s in states]).mean(0)
    assert torch.equal(loaded["encode.weight"], mean)
    assert torch.equal(loaded["decode.weight"], mean) and loaded["steps"].item() == 7
    fresh = Tied()
    fresh.load_state_dict(loaded)  # a tied model takes it back as it was saved
    with safe_open(str(path), "pt") as f:
        about = f.metadata()
    assert about["algorithm"] == "mpls" and orjson.loads(about["run_config"]) == {"workers": 4}


def test_no_model_is_no_file(tmp_path):
    assert save_averaged_model(tmp_path, "mpls", [None, None], {}) is None
    with pytest.raises(RunNotFound, match=r"no model of 'mpls' \(no models/mpls.safetensors\)"):
        load_averaged_model(tmp_path, "mpls")


def test_a_damaged_file_is_one_line(tmp_path):
    save_averaged_model(tmp_path, "mpls", [Tied().state_dict()], {})
    path = model_path(tmp_path, "mpls")
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(MplsError, match=r"mpls.safetensors: not a readable safetensors file"):
        load_averaged_model(tmp_path, "mpls")
