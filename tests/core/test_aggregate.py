import pytest
import torch
from torch.testing import assert_close

from mpls_celery.core.aggregate import average_layers
from mpls_celery.core.errors import CoreValueError


def layer(value: float) -> dict[str, torch.Tensor]:
    return {"w": torch.full((2, 2), value), "b": torch.full((2,), value)}


def test_eq1_averages_local_with_every_pulled_copy():
    local = [layer(1.0), layer(10.0)]
    out = average_layers(local, [[layer(3.0), layer(5.0)], []])
    assert_close(out[0]["w"], torch.full((2, 2), 3.0))  # (1 + 3 + 5) / 3
    assert_close(out[1]["b"], torch.full((2,), 10.0))  # nothing pulled: unchanged


def test_half_rule_weighs_local_and_peer_equally():
    out = average_layers([layer(2.0)], [[layer(4.0), layer(8.0)]], weighting="half")
    assert_close(out[0]["w"], torch.full((2, 2), 4.0))  # ½·2 + ½·mean(4, 8)


def test_inputs_are_never_modified():
    local, pulled = [layer(1.0)], [[layer(3.0)]]
    out = average_layers(local, pulled)
    out[0]["w"].add_(100)
    assert_close(local[0]["w"], torch.full((2, 2), 1.0))
    assert_close(pulled[0][0]["w"], torch.full((2, 2), 3.0))


def test_shape_mismatch_is_refused():
    bad = {"w": torch.zeros(3, 3), "b": torch.zeros(2)}
    with pytest.raises(CoreValueError, match="shape"):
        average_layers([layer(1.0)], [[bad]])
