"""Peer selection (Eq. 2-4) and layer selection (Eq. 6) of the MPLS spec."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mpls_celery.core.errors import CoreValueError

FloatArray = NDArray[np.float64]


def label_divergence(hist_i: ArrayLike, hist_peers: ArrayLike) -> FloatArray:
    """DD_s = sum_c |p_i^c - p_s^c| on normalised label histograms; shape (S,)."""
    own = _normalise(np.asarray(hist_i, dtype=np.float64))
    peers = np.atleast_2d(np.asarray(hist_peers, dtype=np.float64))
    if peers.size == 0:
        return np.zeros(0)
    if peers.shape[1] != own.shape[0]:
        raise CoreValueError(
            f"histograms disagree on class count: {own.shape[0]} vs {peers.shape[1]}"
        )
    peers = peers / np.maximum(peers.sum(axis=1, keepdims=True), 1e-300)
    distance: FloatArray = np.abs(peers - own).sum(axis=1)
    return distance


def _normalise(hist: FloatArray) -> FloatArray:
    total = hist.sum()
    return hist / total if total > 0 else hist


def _share(values: FloatArray) -> FloatArray:
    """values / sum(values); uniform 1/S when the sum is zero (e.g. IID data: all DD = 0)."""
    total = values.sum()
    if total <= 0:
        return np.full(values.shape, 1.0 / values.shape[0])
    share: FloatArray = values / total
    return share


def peer_probabilities(
    bandwidth: ArrayLike, divergence: ArrayLike, tau1: float = 0.5, tau2: float = 0.5
) -> FloatArray:
    """p_s = (tau1*B̄_s + tau2*DD̄_s) / sum_s(...): fast links and different data are preferred."""
    b = np.asarray(bandwidth, dtype=np.float64)
    dd = np.asarray(divergence, dtype=np.float64)
    if b.shape != dd.shape or b.ndim != 1:
        raise CoreValueError(f"bandwidth {b.shape} and divergence {dd.shape} must both be (S,)")
    if tau1 < 0 or tau2 < 0 or not math.isclose(tau1 + tau2, 1.0, rel_tol=1e-5, abs_tol=1e-8):
        raise CoreValueError(f"tau1 and tau2 must be >= 0 and sum to 1 (got {tau1} + {tau2})")
    if b.size == 0:
        return np.zeros(0)
    if (b <= 0).any() or not np.isfinite(b).all():
        raise CoreValueError("bandwidth must be finite and > 0 for every reachable peer")
    if (dd < 0).any():
        raise CoreValueError("divergence must be >= 0")
    mixed = tau1 * _share(b) + tau2 * _share(dd)
    return _share(mixed)


def layer_probabilities(g: ArrayLike) -> FloatArray:
    """q_s(l) = g_s(l) / sum_s' g_s'(l); 1/S for a layer nobody changed. Shapes (S, L)."""
    progress = np.asarray(g, dtype=np.float64)
    if progress.ndim != 2:
        raise CoreValueError(f"g must be (S, L), got shape {progress.shape}")
    if (progress < 0).any() or not np.isfinite(progress).all():
        raise CoreValueError("g must be finite and >= 0")
    s = progress.shape[0]
    if s == 0:
        return progress.copy()
    totals = progress.sum(axis=0)
    q = np.full(progress.shape, 1.0 / s)
    moved = totals > 0
    q[:, moved] = progress[:, moved] / totals[moved]
    return q
