"""MPLS-Peer (the paper's Adv-MPLS): peer selection only, q ≡ 1/S."""

from __future__ import annotations

from mpls_celery.core.strategies.mpls import Mpls


def mpls_peer(tau1: float = 0.5, tau2: float = 0.5, fill: bool = True) -> Mpls:
    return Mpls(tau1, tau2, use_layer_selection=False, name="mpls-peer", fill=fill)
