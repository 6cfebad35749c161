"""Nodes with their own network addresses on one machine: Linux network namespaces joined by a bridge.

`network_namespaces(n)` makes n namespaces ("nodes"), each with `lo` up and one interface `eth0`
holding 10.77.0.1/24, 10.77.0.2/24, ..., all plugged into a bridge that lives in a further namespace
(the "switch"), so that nothing is added to the machine's own namespace and concurrent test runs,
each with its own uniquely named namespaces, cannot see each other even though they use the same
addresses. Processes run inside a node with `node.command(...)` (`ip netns exec NAME ...`).

Teardown always runs: every process left inside a namespace is stopped by pid (SIGTERM, then
SIGKILL), then the namespaces are deleted, which deletes their links and the bridge with them.
Needs root (CAP_NET_ADMIN); `available()` says whether this machine can do it.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

INTERFACE = "eth0"  # the same name in every node: GLOO_SOCKET_IFNAME=eth0 fits them all
SUBNET = "10.77.0"


@dataclass(frozen=True)
class Node:
    """One network namespace: a name for `ip netns exec`, an address and the interface holding it."""

    name: str
    address: str
    interface: str = INTERFACE

    def command(self, *argv: str) -> list[str]:
        """argv run inside this node's network namespace."""
        return ["ip", "netns", "exec", self.name, *argv]

    def pids(self) -> list[int]:
        """The processes now inside this namespace (`ip netns pids`)."""
        listed = subprocess.run(["ip", "netns", "pids", self.name], capture_output=True, text=True)
        return [int(pid) for pid in listed.stdout.split()]

    def inode(self) -> int:
        """The namespace's inode: what /proc/PID/ns/net of a process inside it points to (net:[INODE])."""
        return os.stat(f"/run/netns/{self.name}").st_ino


def _ip(*argv: str) -> None:
    done = subprocess.run(["ip", *argv], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(argv)} failed: {done.stderr.strip()}")


def available() -> bool:
    """Whether namespaces can be made here (root with `ip`): probe by making and deleting one."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return False
    name = f"dgprobe{uuid.uuid4().hex[:8]}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True).returncode == 0
    if made:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return made


def stop_processes(nodes: list[Node], grace_sec: float = 5.0) -> None:
    """Stop every process inside the nodes, by pid: SIGTERM, then SIGKILL after grace_sec."""
    for sig, wait in ((signal.SIGTERM, grace_sec), (signal.SIGKILL, 2.0)):
        pids = [pid for node in nodes for pid in node.pids()]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.time() + wait
        while pids and time.time() < deadline:
            pids = [pid for node in nodes for pid in node.pids()]
            time.sleep(0.1)
        if not pids:
            return


@contextlib.contextmanager
def network_namespaces(count: int = 2) -> Iterator[list[Node]]:
    """`count` nodes on one bridge, at SUBNET.1, SUBNET.2, ...; removed on exit, whatever happened."""
    token = uuid.uuid4().hex[:6]  # unique per run; link names must stay within 15 characters
    switch = f"dg{token}sw"
    nodes = [Node(name=f"dg{token}n{i}", address=f"{SUBNET}.{i + 1}") for i in range(count)]
    made: list[str] = []
    try:
        _ip("netns", "add", switch)
        made.append(switch)
        _ip("-n", switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", switch, "link", "set", "br0", "up")
        for i, node in enumerate(nodes):
            _ip("netns", "add", node.name)
            made.append(node.name)
            # The veth pair is born in the switch; its far end moves into the node, named eth0 there.
            _ip("-n", switch, "link", "add", f"p{i}", "type", "veth", "peer", "name", INTERFACE, "netns", node.name)
            _ip("-n", switch, "link", "set", f"p{i}", "master", "br0")
            _ip("-n", switch, "link", "set", f"p{i}", "up")
            _ip("-n", node.name, "addr", "add", f"{node.address}/24", "dev", INTERFACE)
            _ip("-n", node.name, "link", "set", INTERFACE, "up")
            _ip("-n", node.name, "link", "set", "lo", "up")
        yield nodes
    finally:
        stop_processes([node for node in nodes if node.name in made])
        for name in reversed(made):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)
