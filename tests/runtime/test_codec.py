import lz4.frame
import numpy as np
import orjson
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mpls_celery.errors import SnapshotError
from mpls_celery.runtime.worker.codec import MAGIC, decode_tensors, encode_tensors, with_meta

LAYER = {"w": torch.randn(8, 5), "b": torch.randn(8)}
SHAPES = {"w": (8, 5), "b": (8,)}
META = {"run": "r1", "worker": 3, "layer": 1, "version": 7}


@pytest.mark.parametrize(("wire", "tol"), [("float32", 0.0), ("float16", 1e-2), ("bfloat16", 5e-2)])
def test_round_trip_per_wire_dtype(wire, tol):
    out, meta = decode_tensors(encode_tensors(LAYER, META, wire), SHAPES, META)
    assert meta == META
    for name, tensor in LAYER.items():
        assert out[name].dtype == torch.float32
        torch.testing.assert_close(out[name], tensor, atol=tol, rtol=tol)
        out[name].add_(1)  # writable and owned


@pytest.mark.parametrize("compression", ["lz4", "none"])
@pytest.mark.parametrize("wire", ["float32", "bfloat16"])
def test_a_re_identified_blob_is_the_blob_encoded_under_that_identity(compression, wire):
    layer = {"w": torch.randn(64, 32), "b": torch.randn(64)}  # big enough for LZ4 to pay
    later = {**META, "version": 8, "layer": 2}
    blob = encode_tensors(layer, META, wire, compression)
    assert with_meta(blob, later) == encode_tensors(layer, later, wire, compression)
    assert decode_tensors(with_meta(blob, later), {"w": (64, 32), "b": (64,)}, later)[1] == later


def test_wrong_identity_is_refused():
    blob = encode_tensors(LAYER, META)
    with pytest.raises(SnapshotError, match="version"):
        decode_tensors(blob, SHAPES, {**META, "version": 8})


def test_wrong_shape_is_refused():
    with pytest.raises(SnapshotError, match="expected"):
        decode_tensors(encode_tensors(LAYER, META), {"w": (5, 8), "b": (8,)})


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize(("name", "at"), [("w", (2, 3)), ("b", (7,))])
@pytest.mark.parametrize("wire", ["float32", "bfloat16"])
def test_non_finite_values_are_refused_naming_their_tensor(bad, name, at, wire):
    poisoned = {key: tensor.clone() for key, tensor in LAYER.items()}
    poisoned[name][at] = bad
    with pytest.raises(SnapshotError, match=f"tensor {name} holds NaN or Inf"):
        decode_tensors(encode_tensors(poisoned, META, wire), SHAPES)


def test_truncated_corrupted_and_oversized_snapshots_are_refused():
    blob = encode_tensors(LAYER, META)
    with pytest.raises(SnapshotError):
        decode_tensors(blob[: len(blob) - 7], SHAPES)
    flipped = bytearray(blob)
    flipped[-3] ^= 0xFF
    with pytest.raises(SnapshotError):
        decode_tensors(bytes(flipped), SHAPES)
    # A header that claims the right shapes but a payload that decompresses to more bytes.
    start = len(MAGIC) + 4
    header_end = start + int.from_bytes(blob[len(MAGIC) : start], "big")
    bigger = lz4.frame.compress(np.zeros(4 * 48 + 4096, dtype=np.uint8).tobytes())
    with pytest.raises(SnapshotError):
        decode_tensors(blob[:header_end] + bigger, SHAPES)
    # A header whose checksum does not match the payload.
    header = orjson.loads(blob[start:header_end])
    header["crc32"] ^= 1
    forged = orjson.dumps(header)
    rebuilt = MAGIC + len(forged).to_bytes(4, "big") + forged + blob[header_end:]
    with pytest.raises(SnapshotError, match="checksum"):
        decode_tensors(rebuilt, SHAPES)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_never_crash_and_are_never_accepted(data):
    with pytest.raises(SnapshotError):
        decode_tensors(data, SHAPES)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10_000), st.integers(0, 255))
def test_any_single_byte_change_is_refused_or_harmless(position, value):
    blob = bytearray(encode_tensors(LAYER, META))
    position %= len(blob)
    if blob[position] == value:
        return
    blob[position] = value
    try:
        out, _ = decode_tensors(bytes(blob), SHAPES)
    except SnapshotError:
        return
    # Only a change that leaves the tensors bit-identical may pass (e.g. inside meta text).
    for name, tensor in LAYER.items():
        assert torch.equal(out[name], tensor)


def test_uncompressed_payload_round_trips_and_is_verified():
    blob = encode_tensors(LAYER, META, compression="none")
    out, _ = decode_tensors(blob, SHAPES, META)
    torch.testing.assert_close(out["w"], LAYER["w"])
    with pytest.raises(SnapshotError):
        decode_tensors(blob[:-4], SHAPES)
    with pytest.raises(SnapshotError, match="checksum"):
        decode_tensors(blob[:-4] + b"\x00\x00\x80\x7f", SHAPES)


@pytest.mark.parametrize("wire", ["float32", "bfloat16"])
def test_trained_weights_send_their_high_bytes_compressed_and_round_trip(wire):
    """The sign/exponent byte of trained weights compresses (float16's high byte holds mantissa
    bits too, and mostly does not); the payload says how it was sent."""
    from mpls_celery.runtime.worker.codec import read_header

    layer = {"w": torch.randn(64, 64) * 0.01, "b": torch.randn(64) * 0.01}
    blob = encode_tensors(layer, META, wire)
    assert read_header(blob)["compression"] == "hi-lz4"
    raw = (
        sum(t.numel() for t in layer.values())
        * torch.empty(0, dtype=getattr(torch, wire)).element_size()
    )
    assert len(blob) < raw  # fewer bytes than the raw payload alone
    out, _ = decode_tensors(blob, {"w": (64, 64), "b": (64,)}, META)
    expect = {k: v.to(getattr(torch, wire)).float() for k, v in layer.items()}
    for name in layer:
        assert torch.equal(out[name], expect[name])
    for cut in (1, 100, len(blob) // 2):
        with pytest.raises(SnapshotError):
            decode_tensors(blob[:-cut], {"w": (64, 64), "b": (64,)})
    flipped = bytearray(blob)
    flipped[-1] ^= 0x01  # a low byte: only the checksum can tell
    with pytest.raises(SnapshotError, match="checksum"):
        decode_tensors(bytes(flipped), {"w": (64, 64), "b": (64,)})


def test_bytes_that_do_not_compress_go_raw():
    from mpls_celery.runtime.worker.codec import read_header

    noise = {"w": torch.from_numpy(np.random.default_rng(0).random(4096, dtype=np.float32) * 8 - 4)}
    noise["w"] = noise["w"] * torch.exp2(torch.randint(-60, 60, (4096,)).float())
    blob = encode_tensors(noise, META)
    assert read_header(blob)["compression"] == "none"
    out, _ = decode_tensors(blob, {"w": (4096,)})
    assert torch.equal(out["w"], noise["w"])
