"""Emulated hosts on one machine: network namespaces on one bridge, each host's link shaped with
tc (both directions). Needs root and iproute2.

    python -m infra.netns.hosts up      # A 40, B 10, C 2 Mbit/s on 10.77.0.0/24
    python -m infra.netns.hosts down
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

BRIDGE = "mplsbr0"
BRIDGE_IP = "10.77.0.254"


@dataclass(frozen=True)
class Host:
    name: str
    ip: str
    mbit: float

    @property
    def ns(self) -> str:
        return f"mpls-{self.name}"

    @property
    def veth(self) -> str:
        return f"vmpls{self.name}"

    def command(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.ns, *argv]


DEFAULT_HOSTS = (Host("a", "10.77.0.1", 40), Host("b", "10.77.0.2", 10), Host("c", "10.77.0.3", 2))


def available() -> str | None:
    """None when emulation can run here, else the reason it cannot."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    missing = [tool for tool in ("ip", "tc") if shutil.which(tool) is None]
    return f"missing {', '.join(missing)} (apt install iproute2)" if missing else None


def _run(argv: Sequence[str], check: bool = True) -> None:
    subprocess.run(list(argv), check=check, capture_output=True, text=True)


def _shape(prefix: list[str], dev: str, mbit: float) -> None:
    _run([*prefix, "tc", "qdisc", "add", "dev", dev, "root", "tbf",
          "rate", f"{mbit}mbit", "burst", "32kbit", "latency", "400ms"])  # fmt: skip


def up(hosts: Sequence[Host] = DEFAULT_HOSTS) -> None:
    down(hosts)
    _run(["ip", "link", "add", BRIDGE, "type", "bridge"])
    _run(["ip", "addr", "add", f"{BRIDGE_IP}/24", "dev", BRIDGE])
    _run(["ip", "link", "set", BRIDGE, "up"])
    for host in hosts:
        inside = ["ip", "netns", "exec", host.ns]
        _run(["ip", "netns", "add", host.ns])
        _run(["ip", "link", "add", host.veth, "type", "veth", "peer", "name", f"{host.veth}br"])
        _run(["ip", "link", "set", host.veth, "netns", host.ns])
        _run(["ip", "link", "set", f"{host.veth}br", "master", BRIDGE])
        _run(["ip", "link", "set", f"{host.veth}br", "up"])
        _run([*inside, "ip", "addr", "add", f"{host.ip}/24", "dev", host.veth])
        _run([*inside, "ip", "link", "set", host.veth, "up"])
        _run([*inside, "ip", "link", "set", "lo", "up"])
        _shape(inside, host.veth, host.mbit)  # what the host sends
        _shape([], f"{host.veth}br", host.mbit)  # what the host receives


def down(hosts: Sequence[Host] = DEFAULT_HOSTS) -> None:
    """Idempotent: removes whatever exists (veths go with their namespace)."""
    for host in hosts:
        _run(["ip", "netns", "del", host.ns], check=False)
        _run(["ip", "link", "del", f"{host.veth}br"], check=False)
    _run(["ip", "link", "del", BRIDGE], check=False)


if __name__ == "__main__":
    reason = available()
    if reason:
        sys.exit(f"error: {reason}")
    {"up": up, "down": down}[sys.argv[1] if len(sys.argv) > 1 else "up"]()
