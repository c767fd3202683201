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
    load_run_model,
    model_path,
    save_run_models,
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
    path = save_run_models(tmp_path, "mpls", [states[0], None, *states[1:]], {"workers": 4})
    assert path == model_path(tmp_path, "mpls") and not list(path.parent.glob("*.partial"))
    loaded = load_run_model(tmp_path, "mpls")
    mean = torch.stack([s["encode.weight"] for s in states]).mean(0)
    assert torch.equal(loaded["encode.weight"], mean)
    assert torch.equal(loaded["decode.weight"], mean) and loaded["steps"].item() == 7
    fresh = Tied()
    fresh.load_state_dict(loaded)  # a tied model takes it back as it was saved
    with safe_open(str(path), "pt") as f:
        about = f.metadata()
    assert about["algorithm"] == "mpls" and orjson.loads(about["run_config"]) == {"workers": 4}


def test_no_model_is_no_file(tmp_path):
    assert save_run_models(tmp_path, "mpls", [None, None], {}) is None
    with pytest.raises(RunNotFound, match=r"no model of 'mpls' \(no models/mpls.safetensors\)"):
        load_run_model(tmp_path, "mpls")


def test_a_damaged_file_is_one_line(tmp_path):
    save_run_models(tmp_path, "mpls", [Tied().state_dict()], {})
    path = model_path(tmp_path, "mpls")
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(MplsError, match=r"mpls.safetensors: not a readable safetensors file"):
        load_run_model(tmp_path, "mpls")


def test_each_workers_own_model_beside_the_average_on_request(tmp_path):
    torch.manual_seed(1)
    states = [Tied().state_dict(), None, Tied().state_dict()]  # tied: saved as copies
    save_run_models(tmp_path, "netmax", states, {}, workers=True)
    mine = [load_run_model(tmp_path, "netmax", w) for w in (0, 2)]
    assert all(torch.equal(m["decode.weight"], s["encode.weight"])
               for m, s in zip(mine, [states[0], states[2]], strict=True))  # fmt: skip
    mean = torch.stack([m["encode.weight"] for m in mine]).mean(0)
    assert torch.equal(load_run_model(tmp_path, "netmax")["encode.weight"], mean)
    with pytest.raises(RunNotFound, match=r"no worker 1's model of 'netmax'"):
        load_run_model(tmp_path, "netmax", 1)  # it had none
