"""A container's network namespace as one of `infra/netns/hosts.py`'s emulated hosts: its link shaped
with tc in both directions (eth0 for what it sends, the host's end of its veth for what it
receives), except the traffic on one port (the run's central Redis, the control plane), which passes
unshaped as over a wired management network. Needs root, nsenter and iproute2."""

from __future__ import annotations

import re
import subprocess

from infra.containers.project import docker
from infra.netns.hosts import Host, shape


def netns_command(container: str) -> list[str]:
    """The prefix that runs a host binary (tc, ip) inside the container's network namespace."""
    pid = docker("inspect", "-f", "{{.State.Pid}}", container).strip()
    if pid in ("", "0"):
        raise RuntimeError(f"container {container[:12]} is not running")
    return ["nsenter", "-t", pid, "-n"]


def host_side_veth(container: str, device: str = "eth0") -> str:
    """The host's end of the veth pair whose other end is the container's `device`."""
    inside = subprocess.run([*netns_command(container), "ip", "-o", "link", "show", device],
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    peer = re.search(r"@if(\d+):", inside)
    if not peer:
        raise RuntimeError(f"{device} of {container[:12]} is no veth: {inside.strip()}")
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    for line in links.splitlines():
        index, name = line.split(":")[:2]
        if index == peer.group(1):
            return name.strip().split("@")[0]
    raise RuntimeError(f"no host interface with index {peer.group(1)}")


def shape_container(container: str, host: Host, unshaped_port: int) -> None:
    """`host`'s rate on the container's link, both ways; `unshaped_port`'s traffic exempt."""
    shape(netns_command(container), "eth0", host, f"dport {unshaped_port} 0xffff")
    shape([], host_side_veth(container), host, f"sport {unshaped_port} 0xffff")
