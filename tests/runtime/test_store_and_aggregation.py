"""Store, aggregation and peer selection against a real Redis (no Celery needed here)."""

import threading
import time

import orjson
import pytest
import redis
import torch

from mpls_celery.core.layering import read_layer, snapshot_state
from mpls_celery.runtime.backend.connection import redis_client
from mpls_celery.runtime.options import RuntimeOptions
from mpls_celery.runtime.store import RunStore
from mpls_celery.runtime.worker.codec import decode_tensors, encode_tensors
from mpls_celery.runtime.worker.messages import PullRequest, PullResult, Transfer
from mpls_celery.runtime.worker.node import STATES_REFRESH, NodeRuntime
from mpls_celery.runtime.worker.pull import run_aggregation
from mpls_celery.telemetry.states import WorkerState
from tests.runtime.helpers import make_context, publish_all

pytestmark = pytest.mark.integration


def test_publish_is_compare_and_set_and_collects_old_versions(ctx):
    store = ctx.store.snapshots
    blobs = [b"a", b"b"]
    assert store.publish(7, 0, blobs, [0.0, 0.0], 0.0, keep=2)
    assert not store.publish(7, 0, blobs, [0.0, 0.0], 0.0, keep=2), "version 0 exists already"
    assert not store.publish(7, 2, blobs, [0.0, 0.0], 0.0, keep=2), "version 1 is missing"
    assert store.publish(7, 1, blobs, [1.0, 2.0], 1.0, keep=2)
    assert store.publish(7, 2, blobs, [1.0, 2.0], 2.0, keep=2)
    assert store.fetch_layers(7, 0, [0, 1]) == [None, None]
    assert store.fetch_layers(7, 2, [0, 1]) == blobs
    assert store.head(7).version == 2 and store.head(7).progress == [1.0, 2.0]


def test_aggregation_sums_exactly_the_planned_layers_and_is_idempotent(ctx, raw):
    nodes = publish_all(ctx)
    plan = {1: [0, 1], 2: [1]}
    first = run_aggregation(ctx.store, ctx.layout, PullRequest("unit", 0, 0, plan))
    keys_once = sorted(raw.scan_iter(match=ctx.store.keys.everything))
    result_once = raw.hgetall(ctx.store.keys.pull(0, 0))
    run_aggregation(ctx.store, ctx.layout, PullRequest("unit", 0, 0, plan))
    assert sorted(raw.scan_iter(match=ctx.store.keys.everything)) == keys_once
    result_twice = raw.hgetall(ctx.store.keys.pull(0, 0))
    assert result_twice.keys() == result_once.keys()
    assert first.counts == (1, 2)
    sums, _ = decode_tensors(result_twice[b"l1"], ctx.layout[1])
    expected = {k: nodes[1].published[k] + nodes[2].published[k] for k in ctx.layout[1]}
    for name, tensor in expected.items():
        torch.testing.assert_close(sums[name], tensor)


def test_a_corrupt_snapshot_is_refused_and_reported_never_averaged(ctx, raw):
    publish_all(ctx)
    key = ctx.store.keys.layer(1, 0, 0)
    raw.set(key, raw.get(key)[:-20])
    result = run_aggregation(ctx.store, ctx.layout, PullRequest("unit", 0, 0, {1: (0,), 2: (0,)}))
    assert result.counts[0] == 1
    assert "SnapshotError" in result.errors[1]


def test_a_silent_peer_is_excluded_after_peer_timeout(ctx, raw):
    nodes = publish_all(ctx)
    assert nodes[0]._view(0.0).peers == (1, 2)
    raw.hset(ctx.store.keys.state(2), "heartbeat", orjson.dumps(time.time() - 3))
    time.sleep(STATES_REFRESH)  # peers' states are read again after this long
    assert nodes[0]._view(0.0).peers == (1,)


def test_resume_continues_from_the_published_head(ctx):
    nodes = publish_all(ctx)
    again = NodeRuntime(ctx, 1).resume()
    assert again.version == nodes[1].version == 0
    state = snapshot_state(again.model)
    for layer in again.layers:
        for key, tensor in read_layer(state, layer).items():
            torch.testing.assert_close(tensor, nodes[1].published[key])


def test_nan_layer_is_refused_by_a_puller(ctx, raw):
    publish_all(ctx)
    poisoned = {k: torch.full(s, float("nan")) for k, s in ctx.layout[1].items()}
    meta = {"run": "unit", "worker": 2, "layer": 1, "version": 0}
    raw.set(ctx.store.keys.layer(2, 1, 0), encode_tensors(poisoned, meta))
    result = run_aggregation(ctx.store, ctx.layout, PullRequest("unit", 0, 0, {2: (0, 1)}))
    assert result.counts == (0, 0) and "NaN" in result.errors[2]


def test_a_pull_wait_longer_than_the_socket_timeout_still_gets_its_result(redis_url):
    """BLPOP past the client's socket timeout used to fail the slice on every slow link."""
    slow = redis_client(redis_url, timeout=0.5)
    store = RunStore(slow, "wait")
    with pytest.raises(redis.exceptions.TimeoutError):  # what a plain 1 s BLPOP would meet
        slow.blpop(["nothing"], timeout=1)
    plain = redis.Redis.from_url(redis_url)
    writer = RunStore(plain, "wait")
    late = threading.Timer(1.2, writer.mailbox.put, (3, 7, {"meta": b"{}"}, 30.0))
    late.start()
    try:
        assert store.mailbox.wait(3, 7, timeout=5.0) == {"meta": b"{}"}
    finally:
        late.cancel()
    assert store.mailbox.wait(3, 8, timeout=1.0) is None  # the deadline, not an error
    assert not plain.exists(writer.keys.pull(3, 7), writer.keys.pull_ready(3, 7))
    assert store.mailbox.wait(3, 7, timeout=0.2) is None  # taken once: a redone 7 waits anew


def test_a_wait_its_node_gave_up_leaves_the_result_to_the_redone_iteration(redis_url):
    """A node closed mid-iteration (its slice failed) stops its receiver's wait at the next
    chunk, so the result of the pull it abandoned stays for the node that redoes iteration k."""
    slow = redis_client(redis_url, timeout=0.5)  # 0.2 s chunks
    store = RunStore(slow, "gave-up")
    stop = threading.Event()
    abandoned = threading.Thread(target=store.mailbox.wait, args=(4, 9, 30.0, stop))
    abandoned.start()
    stop.set()
    abandoned.join(timeout=10.0)  # a wait not stopped would run its 30 s
    assert not abandoned.is_alive(), "a stopped wait ran on"
    store.mailbox.put(4, 9, {"meta": b"{}"}, 30.0)
    assert store.mailbox.wait(4, 9, timeout=5.0) == {"meta": b"{}"}
    assert store.mailbox.wait(4, 9, timeout=30.0, stop=stop) is None  # stopped: not even one chunk


@pytest.mark.parametrize("mixing", ["average-then-step", "train-then-average"])
def test_simulator_and_runtime_mix_the_same_state(ctx, mixing):
    """One worker step, two engines: the same start model, pulled layers and trained model give
    the same mixed state whether the copies are summed in-process (simulator) or by the
    aggregation task through Redis (runtime)."""
    from dataclasses import replace

    import numpy as np

    from mpls_celery.core.aggregate import Weighting
    from mpls_celery.core.semantics import Mixing, Semantics
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

    run_aggregation(ctx.store, ctx.layout, PullRequest("unit", 0, 0, by_peer))
    start = [read_layer(start_state, layer) for layer in me.layers]
    received = me._receive(0, plan, start, until=time.monotonic() + 5.0)  # as beside training
    assert received is not None and received.counts == [1, 2]
    assert (received.premixed is None) == (mixing == "train-then-average")
    me._mix_in(plan, start, received)
    runtime_state = me.model.state_dict()

    for layer, mixed in zip(me.layers, sim_layers, strict=True):
        for key in layer.keys:
            assert torch.equal(runtime_state[key], mixed[key]), key
    first = me.layers[0].keys[0]
    assert not torch.equal(sim_layers[0][first], trained_state[first]), "the pull changed nothing"


def test_pulls_read_a_peers_trained_model_until_its_next_version_is_out(ctx, raw):
    """pull_sees: trained — the parameter store holds the trained model of iteration k from
    the end of local training until version k + 1 replaces it; memory stays bounded."""
    store = ctx.store.snapshots
    assert store.publish(4, 0, [b"v0-a", b"v0-b"], [0.0, 0.0], 0.0, keep=2)
    assert store.latest_layers(4, [0, 1])[1] == [b"v0-a", b"v0-b"]
    assert store.publish_trained(4, 0, [b"t0-a", b"t0-b"], ttl=30)
    head, blobs = store.latest_layers(4, [1, 0])
    assert head.version == 0 and blobs == [b"t0-b", b"t0-a"]
    assert store.latest_layers(4, [0], trained=False)[1] == [b"v0-a"]  # evaluations: published
    assert not store.publish_trained(4, 3, [b"x", b"y"], ttl=30), "only for the head version"
    assert store.publish(4, 1, [b"v1-a", b"v1-b"], [1.0, 1.0], 1.0, keep=2)
    assert store.latest_layers(4, [0, 1])[1] == [b"v1-a", b"v1-b"]
    keys = raw.scan_iter(match=ctx.store.keys.everything)
    assert not [k for k in keys if b":t0" in k], "the trained copy is collected"


def test_pull_messages_survive_celerys_json_and_a_bad_mailbox_is_refused():
    import json

    request = PullRequest("r", 3, 7, {1: (0, 2), 12: (1,)}, {1: 1e6, 12: 2.5e5})
    assert PullRequest.from_json(json.loads(json.dumps(request.to_json()))) == request
    result = PullResult(
        (1, 0), (b"sum", None), {1: 4}, {2: "PeerUnavailable: x"}, 10,
        {1: Transfer(70_000, 0.5, 1.8e9), 2: Transfer(9, 0.01, 1.8e9)}, 0.5,
    )  # fmt: skip
    assert PullResult.from_fields(result.to_fields()) == result
    assert result.speeds() == {1: 140_000.0}  # too small a transfer says nothing about its link
    from mpls_celery.errors import InvalidState

    with pytest.raises(InvalidState):
        PullResult.from_fields({"meta": b"[1, 2]"})


def test_a_version_is_the_model_it_publishes_layer_for_layer(ctx):
    """Layers not mixed are published from the trained copy's bytes (re-headed), the mixed
    ones encoded afresh: either way each blob is exactly the new model's layer, encoded."""
    import numpy as np

    from mpls_celery.core.aggregate import Weighting
    from mpls_celery.core.strategies import Plan

    nodes = publish_all(ctx)
    me = nodes[0]

    class PullsLayerOneFromPeerOne:  # the worker's own step, with this strategy
        name = "one-layer"

        def plan(self, view: object, rng: object) -> Plan:
            return Plan((1,), np.array([[0, 1]]), Weighting.UNIFORM)

    me.step.strategy = PullsLayerOneFromPeerOne()
    for peer in (1, 2):  # a peer model that differs from worker 0's
        nodes[peer].published = {k: v + 1 for k, v in nodes[peer].published.items()}
        nodes[peer]._publish(1, nodes[peer].progress)
    record = me.iteration(lambda request, deadline: run_aggregation(ctx.store, ctx.layout, request))
    me.flush()
    assert record.plan == {1: [1]}
    state = me.model.state_dict()
    blobs = ctx.store.snapshots.fetch_layers(0, 1, [0, 1])
    for l_idx, (layer, blob) in enumerate(zip(me.layers, blobs, strict=True)):
        meta = {"run": ctx.store.run_id, "worker": 0, "version": 1, "layer": l_idx}
        fresh = encode_tensors(read_layer(state, layer), meta, ctx.config.wire_dtype,
                               ctx.config.compression)  # fmt: skip
        assert blob == fresh, l_idx
    assert me._trained_blobs[0] == 0, "layer 0 was taken from the trained copy"
    for key, kept in me.published.items():  # the version kept is a copy: training goes on
        assert torch.equal(kept, state[key]) and kept.data_ptr() != state[key].data_ptr(), key


def test_failed_slices_are_counted_in_a_row_at_one_iteration(ctx):
    """What decides that a worker's error will not pass (tasks.MAX_FAILED_SLICES)."""
    nodes = ctx.store.nodes
    assert [nodes.count_failure(0) for _ in range(3)] == [(0, 1), (0, 2), (0, 3)]
    nodes.update(0, k=4)  # a slice got further: the count starts again there
    assert [nodes.count_failure(0) for _ in range(2)] == [(4, 1), (4, 2)]
    assert nodes.count_failure(1) == (0, 1)  # per worker
    state = nodes.state(0)
    assert (state.failed_at, state.failures) == (4, 2) and nodes.refused == 0


def test_a_node_says_training_through_its_slice_idle_after_it_and_finished_at_the_end(redis_url):
    options = RuntimeOptions(link_speeds="achieved", iterations=3)
    ctx = make_context(redis.Redis.from_url(redis_url), "states", options)
    node, nodes = NodeRuntime(ctx, 0).resume(), ctx.store.nodes

    def said() -> tuple[WorkerState | None, int]:
        node.publisher.flush()
        state = nodes.state(0)
        return state.state, state.k

    node.iteration(lambda request, deadline: None)
    assert said() == (WorkerState.TRAINING, 1), "version 1 is out; version 2 trains at once"
    node.flush()  # the slice ends: the next may wait in the queue
    assert said() == (WorkerState.IDLE, 1)
    node.iteration(lambda request, deadline: None)
    assert said() == (WorkerState.TRAINING, 2)
    node.iteration(lambda request, deadline: None)
    node.flush()
    assert node.finished and said() == (WorkerState.FINISHED, 3)


def test_the_pull_is_asked_for_beside_the_step_and_a_planner_failure_is_raised_after_it(ctx):
    nodes = publish_all(ctx)
    me = nodes[0]
    asked_from: list[str] = []

    def enqueue(request: PullRequest, deadline: float) -> None:
        asked_from.append(threading.current_thread().name)
        run_aggregation(ctx.store, ctx.layout, request)

    me.iteration(enqueue)
    me.flush()
    assert asked_from and asked_from[0].startswith("mpls-planner"), asked_from

    class PlanBreaks:
        name = "breaks"

        def plan(self, view: object, rng: object) -> None:
            raise RuntimeError("the plan broke")

    me.step.strategy = PlanBreaks()
    with pytest.raises(RuntimeError, match="the plan broke"):  # in the node's thread
        me.iteration(enqueue)
    me.flush()
    assert me.version == 1 and ctx.store.snapshots.head(0).version == 1, "nothing published"
    planners = list(me.planner._running)
    me.close()
    assert planners and not any(thread.is_alive() for thread in planners)
