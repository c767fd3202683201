"""Where a runtime worker's links come from: the real network (reachability from heartbeats,
speeds measured by its own pulls) or an emulated one (a network profile's speeds, outages and
compute speeds, with pulls delayed and training stretched to match). The node asks one of these
and never branches on emulation itself."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mpls_celery.core.link_model import LinkSpeeds, blend_speeds, estimate_or_prior
from mpls_celery.core.network_profile import NetworkProfile
from mpls_celery.core.step import WorkerStep
from mpls_celery.core.strategies import Plan, WorkerView


@dataclass(frozen=True)
class MeasuredNetwork:
    """Real links: every live peer is reachable; its speed is this worker's estimate of it (the
    median of its other estimates, or a prior, until it is first measured). Estimates are
    probed (each link timed alone, `probes.py`) or follow what pulls achieved (EWMA)."""

    probes: bool = True

    def estimates(
        self, known: Mapping[int, float], measured: Mapping[int, float]
    ) -> dict[int, float] | None:
        """The estimates to store after a pull (None: unchanged)."""
        return None if self.probes else blend_speeds(known, measured)

    def reachable(self, worker: int, peers: Sequence[int], now: float) -> list[bool]:
        return [True] * len(peers)

    def speeds(
        self, worker: int, peers: Sequence[int], now: float, known: Mapping[int, float]
    ) -> list[float]:
        return [estimate_or_prior(known, p) for p in peers]

    def emulated_bps(self, step: WorkerStep, view: WorkerView, plan: Plan) -> None:
        return None

    def stretch(self, worker: int, elapsed: float) -> None:
        return None


@dataclass(frozen=True)
class EmulatedNetwork:
    """A network profile played on real sockets: its outages, its link speeds (pulls are
    delayed to take bytes / speed, under the run's link model) and its compute speeds."""

    profile: NetworkProfile
    probes = False

    def estimates(
        self, known: Mapping[int, float], measured: Mapping[int, float]
    ) -> dict[int, float] | None:
        return None  # the profile says

    def reachable(self, worker: int, peers: Sequence[int], now: float) -> list[bool]:
        if not peers:
            return []
        return [bool(up) for up in self.profile.links_up(worker, list(peers), now)]

    def speeds(
        self, worker: int, peers: Sequence[int], now: float, known: Mapping[int, float]
    ) -> list[float]:
        return [float(b) for b in self.profile.link_speeds(worker, list(peers), now)]

    def emulated_bps(self, step: WorkerStep, view: WorkerView, plan: Plan) -> dict[int, float]:
        """Per peer, the rate that makes the pull take as long as the link model says (its own
        link's rate, or its share of the inbound rate when links are shared)."""
        seconds = step.pull_seconds(view, plan)
        sizes = plan.peer_bytes(view.layer_bytes)
        return {
            peer: float(size / sec) if sec > 0 else float(b)
            for peer, size, sec, b in zip(view.peers, sizes, seconds, view.bandwidth, strict=True)
        }

    def stretch(self, worker: int, elapsed: float) -> None:
        """A slower device: training takes 1 / compute speed as long."""
        time.sleep(max(0.0, elapsed * (1.0 / self.profile.compute(worker) - 1.0)))


Network = MeasuredNetwork | EmulatedNetwork


def network_for(
    profile: NetworkProfile | None, link_speeds: LinkSpeeds = LinkSpeeds.PROBED
) -> Network:
    if profile is not None:
        return EmulatedNetwork(profile)
    return MeasuredNetwork(probes=link_speeds is LinkSpeeds.PROBED)
