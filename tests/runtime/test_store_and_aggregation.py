"""Store, aggregation and peer selection against a real Redis (no Celery needed here)."""

import threading
import time

import orjson
import pytest
import redis
import torch

from mpls_celery.core.layering import read_layer, snapshot_state
from mpls_celery.runtime.aggregation import run_aggregation
from mpls_celery.runtime.codec import decode_tensors, encode_tensors
from mpls_celery.runtime.connection import redis_client
from mpls_celery.runtime.node import NodeRuntime
from mpls_celery.runtime.store import RunStore
from tests.runtime.helpers import publish_all

pytestmark = pytest.mark.integration


def test_publish_is_compare_and_set_and_collects_old_versions(ctx):
    store = ctx.store
    blobs = [b"a", b"b"]
    assert store.publish(7, 0, blobs, [0.0, 0.0], 0.0, keep=2)
    assert not store.publish(7, 0, blobs, [0.0, 0.0], 0.0, keep=2), "version 0 exists already"
    assert not store.publish(7, 2, blobs, [0.0, 0.0], 0.0, keep=2), "version 1 is missing"
    assert store.publish(7, 1, blobs, [1.0, 2.0], 1.0, keep=2)
    assert store.publish(7, 2, blobs, [1.0, 2.0], 2.0, keep=2)
    assert store.fetch_layers(7, 0, [0, 1]) == [None, None]
    assert store.fetch_layers(7, 2, [0, 1]) == blobs
    assert store.head(7).version == 2 and store.head(7).progress == [1.0, 2.0]


def test_aggregation_sums_exactly_the_planned_layers_and_is_idempotent(ctx):
    nodes = publish_all(ctx)
    plan = {1: [0, 1], 2: [1]}
    first = run_aggregation(ctx.store, ctx.layout, 0, 0, plan, None)
    keys_once = sorted(ctx.store.run_keys())
    result_once = ctx.store.r.hgetall(ctx.store.key("pull", 0, 0))
    run_aggregation(ctx.store, ctx.layout, 0, 0, plan, None)
    assert sorted(ctx.store.run_keys()) == keys_once
    result_twice = ctx.store.r.hgetall(ctx.store.key("pull", 0, 0))
    assert result_twice.keys() == result_once.keys()
    assert first["counts"] == [1, 2]
    sums, _ = decode_tensors(result_twice[b"l1"], ctx.layout[1])
    expected = {k: nodes[1].published[k] + nodes[2].published[k] for k in ctx.layout[1]}
    for name, tensor in expected.items():
        torch.testing.assert_close(sums[name], tensor)


def test_a_corrupt_snapshot_is_refused_and_reported_never_averaged(ctx):
    publish_all(ctx)
    key = ctx.store.layer_key(1, 0, 0)
    ctx.store.r.set(key, ctx.store.r.get(key)[:-20])
    meta = run_aggregation(ctx.store, ctx.layout, 0, 0, {1: [0], 2: [0]}, None)
    assert meta["counts"][0] == 1
    assert "SnapshotError" in meta["errors"]["1"]


def test_a_silent_peer_is_excluded_after_peer_timeout(ctx):
    nodes = publish_all(ctx)
    assert nodes[0]._view(0.0).peers == (1, 2)
    ctx.store.r.hset(ctx.store.key("node", 2, "state"), "heartbeat", orjson.dumps(time.time() - 3))
    assert nodes[0]._view(0.0).peers == (1,)


def test_resume_continues_from_the_published_head(ctx):
    nodes = publish_all(ctx)
    again = NodeRuntime(ctx, 1).resume()
    assert again.version == nodes[1].version == 0
    state = snapshot_state(again.model)
    for layer in again.layers:
        for key, tensor in read_layer(state, layer).items():
            torch.testing.assert_close(tensor, nodes[1].published[key])


def test_nan_layer_is_refused_by_a_puller(ctx):
    publish_all(ctx)
    poisoned = {k: torch.full(s, float("nan")) for k, s in ctx.layout[1].items()}
    meta = {"run": "unit", "worker": 2, "layer": 1, "version": 0}
    ctx.store.r.set(ctx.store.layer_key(2, 1, 0), encode_tensors(poisoned, meta))
    result = run_aggregation(ctx.store, ctx.layout, 0, 0, {2: [0, 1]}, None)
    assert result["counts"] == [0, 0] and "NaN" in result["errors"]["2"]


def test_a_pull_wait_longer_than_the_socket_timeout_still_gets_its_result(redis_url):
    """BLPOP past the client's socket timeout used to fail the slice on every slow link."""
    store = RunStore(redis_client(redis_url, timeout=0.5), "wait")
    with pytest.raises(redis.exceptions.TimeoutError):  # what a plain 1 s BLPOP would meet
        store.r.blpop(["nothing"], timeout=1)
    writer = RunStore(redis.Redis.from_url(redis_url), "wait")
    late = threading.Timer(1.2, writer.put_pull_result, (3, 7, {"meta": b"{}"}, 30.0))
    late.start()
    try:
        assert store.wait_pull_result(3, 7, timeout=5.0, state="pulling") == {"meta": b"{}"}
    finally:
        late.cancel()
    assert store.wait_pull_result(3, 8, timeout=1.0) is None  # the deadline, not an error
    assert not writer.r.exists(writer.key("pull", 3, 7), writer.key("pull", 3, 7, "ready"))


@pytest.mark.parametrize("mixing", ["average-then-step", "train-then-average"])
def test_simulator_and_runtime_mix_the_same_state(ctx, mixing):
    """One worker step, two engines: the same start model, pulled layers and trained model give
    the same mixed state whether the copies are summed in-process (simulator) or by the
    aggregation task through Redis (runtime)."""
    from dataclasses import replace

    import numpy as np

    from mpls_celery.core.aggregate import Weighting
    from mpls_celery.core.step import Mixing, Semantics
    from mpls_celery.core.strategies import Plan
    from mpls_celery.sim.engine import mix_copies

    torch.manual_seed(0)
    nodes = publish_all(ctx)
    for peer in (1, 2):  # peers publish version 1: models that differ from worker 0's
        node = nodes[peer]
        node.published = {k: v + torch.randn_like(v) for k, v in node.published.items()}
        assert node._publish(1, node.progress.after(node.published, node.published, node.layers))
    me = nodes[0]
    me.step = replace(me.step, semantics=Semantics(mixing=Mixing(mixing)))
    start_state = snapshot_state(me.model)
    with torch.no_grad():
        for value in me.model.parameters():
            value.add_(0.1 * torch.randn_like(value))  # the local update
    trained_state = snapshot_state(me.model)
    plan = Plan((1, 2), np.array([[1, 1], [0, 1]]), Weighting.UNIFORM)
    by_peer = plan.layers_by_peer()

    pulled = [[], []]
    for peer, layer_ids in by_peer.items():
        for l_idx in layer_ids:
            pulled[l_idx].append(read_layer(nodes[peer].published, me.layers[l_idx]))
    sim_layers = mix_copies(me.step, me.layers, start_state, trained_state, pulled, plan.weighting)

    run_aggregation(ctx.store, ctx.layout, 0, 0, by_peer, None)
    result = ctx.store.wait_pull_result(0, 0, 5.0)
    start = [read_layer(start_state, layer) for layer in me.layers]
    me._average(plan, start, result)
    runtime_state = me.model.state_dict()

    for layer, mixed in zip(me.layers, sim_layers, strict=True):
        for key in layer.keys:
            assert torch.equal(runtime_state[key], mixed[key]), key
    first = me.layers[0].keys[0]
    assert not torch.equal(sim_layers[0][first], trained_state[first]), "the pull changed nothing"
