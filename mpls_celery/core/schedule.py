"""Which layer to pull from which peer: the θ mask, μ1/μ2, efficiency E and Algorithm 1 (list
scheduling with the 1/√S retirement rule, then a phase-2 fill that never raises the makespan)."""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mpls_celery.core.errors import CoreValueError

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

MASK_EPSILON = 1e-12  # relative slack on θ so float noise never masks the mean peer


@dataclass(frozen=True)
class ScheduleResult:
    """y[s, l] = 1 when layer l is pulled from peer s; owner[l] = the phase-1 peer of layer l."""

    y: IntArray
    owner: IntArray
    makespan: float  # MAX of phase 1 = λ of the final y (Eq. 7-8)
    retired: tuple[int, ...]


@dataclass(frozen=True)
class ScheduleMatrices:
    """The per-(peer, layer) quantities of Steps 5 and 6 (docs/algorithm.md), exposed for tests and the TUI."""

    pull_time: FloatArray  # μ1 with ∞ where masked
    efficiency: FloatArray  # E ∈ [0, 1], 0 where masked
    masked: NDArray[np.bool_]


def schedule_matrices(
    layer_bytes: ArrayLike, bandwidth: ArrayLike, p: ArrayLike, q: ArrayLike
) -> ScheduleMatrices:
    m, b, pv, qv = _validated(layer_bytes, bandwidth, p, q)
    mu1 = m[None, :] / b[:, None]
    mu2 = pv[:, None] * qv
    theta = mu2.mean(axis=0)
    masked = mu2 < theta * (1.0 - MASK_EPSILON)
    pull_time = np.where(masked, np.inf, mu1)
    fastest = pull_time.min(axis=0)
    efficiency = np.where(masked, 0.0, fastest / pull_time)
    return ScheduleMatrices(pull_time=pull_time, efficiency=efficiency, masked=masked)


def _validated(
    layer_bytes: ArrayLike, bandwidth: ArrayLike, p: ArrayLike, q: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    m = np.asarray(layer_bytes, dtype=np.float64)
    b = np.asarray(bandwidth, dtype=np.float64)
    pv = np.asarray(p, dtype=np.float64)
    qv = np.asarray(q, dtype=np.float64)
    if qv.shape != (b.shape[0], m.shape[0]):
        raise CoreValueError(
            f"q has shape {qv.shape}, expected (S, L) = {(b.shape[0], m.shape[0])}"
        )
    if m.ndim != 1 or (m <= 0).any() or not np.isfinite(m).all():
        raise CoreValueError("layer_bytes must be a 1-D array of finite sizes > 0")
    if b.ndim != 1 or (b <= 0).any() or not np.isfinite(b).all():
        raise CoreValueError("bandwidth must be a 1-D array of finite speeds > 0")
    if pv.shape != b.shape:
        raise CoreValueError(f"p has shape {pv.shape}, expected {b.shape}")
    return m, b, pv, qv


def schedule(
    layer_bytes: ArrayLike, bandwidth: ArrayLike, p: ArrayLike, q: ArrayLike, fill: bool = True
) -> ScheduleResult:
    """Algorithm 1 (docs/algorithm.md, "Step 7: list scheduling (Algorithm 1)"), with its S=0, S=1 and empty-Q2 resolutions. `fill=False` skips
    phase 2 (one copy per layer): an option, not the default (docs/results.md: Eq. 1 weighs a
    worker's own step by 1 / (1 + copies), so extra copies slow the mean model down)."""
    n_layers = int(np.asarray(layer_bytes).shape[0])
    n_peers = int(np.asarray(bandwidth).reshape(-1).shape[0])
    if n_peers == 0:
        empty = np.zeros((0, n_layers), dtype=np.int64)
        return ScheduleResult(empty, np.full(n_layers, -1, dtype=np.int64), 0.0, ())
    mats = schedule_matrices(layer_bytes, bandwidth, p, q)
    if n_peers == 1:
        y = np.ones((1, n_layers), dtype=np.int64)
        owner = np.zeros(n_layers, dtype=np.int64)
        return ScheduleResult(y, owner, float(mats.pull_time.sum()), ())
    # Each peer's list: layers by E descending, ties by ascending layer index (stable sort).
    lists = np.argsort(-mats.efficiency, axis=1, kind="stable")
    owner, loads, retired = _phase_one(mats, lists)
    makespan = float(loads.max())
    if fill:
        y = _phase_two(mats, lists, owner, loads, makespan)
    else:
        y = np.zeros((n_peers, n_layers), dtype=np.int64)
        y[owner, np.arange(n_layers)] = 1
    return ScheduleResult(y, owner, makespan, retired)


def schedule_layers(
    layer_bytes: ArrayLike, bandwidth: ArrayLike, p: ArrayLike, q: ArrayLike, fill: bool = True
) -> IntArray:
    """y of shape (S, L): the public one-call form of `schedule`."""
    return schedule(layer_bytes, bandwidth, p, q, fill).y


def _phase_one(
    mats: ScheduleMatrices, lists: IntArray
) -> tuple[IntArray, FloatArray, tuple[int, ...]]:
    n_peers, n_layers = mats.efficiency.shape
    threshold = 1.0 / math.sqrt(n_peers)
    eff = mats.efficiency.tolist()
    pull = mats.pull_time.tolist()
    order = lists.tolist()
    rank = mats.efficiency.sum(axis=1).tolist()
    loads = [0.0] * n_peers
    cursor = [0] * n_peers
    pending = [True] * n_layers
    owner = [-1] * n_layers
    left = n_layers
    retired: list[int] = []
    # Heap key = (load, -rank, index): least-loaded peer, then larger rank, then lower index.
    heap = [(0.0, -rank[s], s) for s in range(n_peers)]
    heapq.heapify(heap)
    while left and heap:
        _, _, s = heapq.heappop(heap)
        row = order[s]
        while not pending[row[cursor[s]]]:
            cursor[s] += 1
        layer = row[cursor[s]]
        if eff[s][layer] <= threshold:
            retired.append(s)
            continue
        pending[layer] = False
        left -= 1
        owner[layer] = s
        loads[s] += pull[s][layer]
        rank[s] -= eff[s][layer]
        heapq.heappush(heap, (loads[s], -rank[s], s))
    if left:  # cannot happen for S >= 2 (a layer's fastest allowed peer has E = 1); kept as a net
        for layer in (i for i in range(n_layers) if pending[i]):
            best = int(np.argmin(mats.pull_time[:, layer]))
            owner[layer] = best
            loads[best] += pull[best][layer]
    return np.asarray(owner, dtype=np.int64), np.asarray(loads), tuple(sorted(retired))


def _phase_two(
    mats: ScheduleMatrices, lists: IntArray, owner: IntArray, loads: FloatArray, makespan: float
) -> IntArray:
    n_peers, n_layers = mats.efficiency.shape
    y = np.zeros((n_peers, n_layers), dtype=np.int64)
    pull = mats.pull_time
    cheapest = pull.min(axis=1)
    for s in range(n_peers):
        load = float(loads[s])
        if load + cheapest[s] > makespan:
            continue
        row_pull = pull[s].tolist()
        for layer in lists[s].tolist():
            cost = row_pull[layer]
            if owner[layer] != s and load + cost <= makespan:
                y[s, layer] = 1
                load += cost
    y[owner, np.arange(n_layers)] = 1
    return y


def pull_delay(y: ArrayLike, layer_bytes: ArrayLike, bandwidth: ArrayLike) -> float:
    """λ = max_s Σ_l y_s(l)·M_l / B_s: peers in parallel, one peer's layers one after another."""
    plan = np.asarray(y, dtype=np.float64)
    if plan.size == 0:
        return 0.0
    m = np.asarray(layer_bytes, dtype=np.float64)
    b = np.asarray(bandwidth, dtype=np.float64)
    return float(((plan * m[None, :]).sum(axis=1) / b).max())
