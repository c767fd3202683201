"""Emulated hosts on one machine: network namespaces on one bridge, each host's link shaped with
tc in both directions (rate with tbf; delay and jitter with netem in front of it). A link between
two hosts therefore runs at the slower host's rate, as behind one Wi-Fi access point. An optional
monitor host (the experiment's control plane: central Redis, launcher, evaluations) talks to every
host outside the shapers, as over a wired management network, so that watching a run does not
take bandwidth from the links under test. Needs root and iproute2.

    python -m infra.netns.hosts up [PRESET]    # three (A 40, B 10, C 2 Mbit/s) | rooms
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
    delay_ms: float = 0.0  # one way, each direction of the host's link
    jitter_ms: float = 0.0
    queue_ms: float = 400.0  # the shaper's buffer, in time at the link's rate (a busy Wi-Fi AP's)

    @property
    def ns(self) -> str:
        return f"mpls-{self.name}"

    @property
    def veth(self) -> str:
        return f"vmpls{self.name}"

    def command(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.ns, *argv]


DEFAULT_HOSTS = (Host("a", "10.77.0.1", 40), Host("b", "10.77.0.2", 10), Host("c", "10.77.0.3", 2))
# paper30's rooms A / B / C (50 / 30 / 15 Mbit/s at the access point, two hops: 25 / 15 / 7.5 per
# link) at half scale, so that a LeNet-5 pull takes about as long, relative to the 2 cores' training,
# as on the paper's Jetsons. No delay: the kernel of the machines this is tested on has no netem.
ROOMS_HOSTS = (
    Host("a", "10.77.0.1", 12.5),
    Host("b", "10.77.0.2", 7.5),
    Host("c", "10.77.0.3", 3.75),
)
PRESETS = {"three": DEFAULT_HOSTS, "rooms": ROOMS_HOSTS}
# Unshaped: reading every worker's model for an evaluation every 2 s is 1.8 Mbit/s per host of
# two LeNet-5 workers — half of room C's link — which the paper's links never carried.
MONITOR = Host("m", "10.77.0.100", 0)


def available() -> str | None:
    """None when emulation can run here, else the reason it cannot."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    missing = [tool for tool in ("ip", "tc") if shutil.which(tool) is None]
    return f"missing {', '.join(missing)} (apt install iproute2)" if missing else None


def _run(argv: Sequence[str], check: bool = True) -> None:
    done = subprocess.run(list(argv), capture_output=True, text=True)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")


def shape(prefix: list[str], dev: str, host: Host, exempt: str | None) -> None:
    """tbf (after netem, if asked) on `dev`; with `exempt` ("dst IP" or "src IP"), an htb root
    first sends that traffic to an unshaped class and everything else through the shaper."""
    tc = [*prefix, "tc", "qdisc", "add", "dev", dev]
    parent = ["root"]
    if exempt:
        fast = ["htb", "rate", "10gbit", "quantum", "60000"]
        _run([*tc, "root", "handle", "1:", "htb", "default", "10"])
        for classid in ("1:10", "1:20"):
            _run([*prefix, "tc", "class", "add", "dev", dev, "parent", "1:",
                  "classid", classid, *fast])  # fmt: skip
        _run([*prefix, "tc", "filter", "add", "dev", dev, "parent", "1:", "protocol", "ip",
              "prio", "1", "u32", "match", "ip", *exempt.split(), "flowid", "1:20"])  # fmt: skip
        parent = ["parent", "1:10"]
    if host.delay_ms or host.jitter_ms:  # needs the kernel's sch_netem
        _run([*tc, *parent, "handle", "3:", "netem", "delay", f"{host.delay_ms}ms",
              f"{host.jitter_ms}ms", "limit", "10000"])  # fmt: skip
        parent = ["parent", "3:1"]
    _run([*tc, *parent, "handle", "10:", "tbf", "rate", f"{host.mbit}mbit", "burst", "32kbit",
          "latency", f"{host.queue_ms:g}ms"])  # fmt: skip


def up(hosts: Sequence[Host] = DEFAULT_HOSTS, monitor: Host | None = None) -> None:
    """The hosts on one bridge; with a monitor, one more namespace whose traffic to and from
    every host bypasses the hosts' shapers."""
    everyone = [*hosts, *([monitor] if monitor else [])]
    down(everyone)
    _run(["ip", "link", "add", BRIDGE, "type", "bridge"])
    _run(["ip", "addr", "add", f"{BRIDGE_IP}/24", "dev", BRIDGE])
    _run(["ip", "link", "set", BRIDGE, "up"])
    _forward_on_bridge(True)
    for host in everyone:
        inside = ["ip", "netns", "exec", host.ns]
        _run(["ip", "netns", "add", host.ns])
        _run(["ip", "link", "add", host.veth, "type", "veth", "peer", "name", f"{host.veth}br"])
        _run(["ip", "link", "set", host.veth, "netns", host.ns])
        _run(["ip", "link", "set", f"{host.veth}br", "master", BRIDGE])
        _run(["ip", "link", "set", f"{host.veth}br", "up"])
        _run([*inside, "ip", "addr", "add", f"{host.ip}/24", "dev", host.veth])
        _run([*inside, "ip", "link", "set", host.veth, "up"])
        _run([*inside, "ip", "link", "set", "lo", "up"])
        if host is monitor:
            continue
        mon = f"{monitor.ip}/32" if monitor else None
        shape(inside, host.veth, host, mon and f"dst {mon}")  # what the host sends
        shape([], f"{host.veth}br", host, mon and f"src {mon}")  # what the host receives


def down(hosts: Sequence[Host] = DEFAULT_HOSTS) -> None:
    """Idempotent: removes whatever exists (veths go with their namespace)."""
    for host in hosts:
        _run(["ip", "netns", "del", host.ns], check=False)
        _run(["ip", "link", "del", f"{host.veth}br"], check=False)
    _run(["ip", "link", "del", BRIDGE], check=False)
    _forward_on_bridge(False)


def _forward_on_bridge(allow: bool) -> None:
    """Where Docker runs, bridged frames pass iptables (br_netfilter) and its FORWARD policy is
    DROP: the hosts could not reach each other. One rule, first in FORWARD, lets this bridge's
    traffic through; removed with the bridge."""
    if shutil.which("iptables") is None:
        return
    rule = ["FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT"]
    while subprocess.run(["iptables", "-C", *rule], capture_output=True).returncode == 0:
        _run(["iptables", "-D", *rule])
    if allow:
        _run(["iptables", "-I", *rule])


if __name__ == "__main__":
    reason = available()
    if reason:
        sys.exit(f"error: {reason}")
    action = sys.argv[1] if len(sys.argv) > 1 else "up"
    preset = sys.argv[2] if len(sys.argv) > 2 else "three"
    if action not in ("up", "down") or preset not in PRESETS:
        sys.exit(f"usage: python -m infra.netns.hosts up|down [{'|'.join(PRESETS)}]")
    if action == "up":
        up(PRESETS[preset], MONITOR)
    else:
        down([*PRESETS[preset], MONITOR])
