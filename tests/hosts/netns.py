"""Several hosts on one machine: network namespaces joined by veth pairs and bridges.

A `Hosts` is a small network built with iproute2 (`ip netns`, `ip link`): each
`Net` is a bridge with a /24 of its own, each `Host` a network namespace with one
veth pair into every net it is on, and a host name of its own for the processes
it starts (a UTS namespace: engines report it as their host). The machine itself
is on every net too (the bridge holds the net's first address), so the test can
watch the store and the files the hosts write.

Everything is named after this process (`mc<pid in hex><n>…`) and removed by
`close()`: the processes of every host are killed, the namespaces deleted (which
removes their veth ends, and so the pairs), the bridges deleted. Processes are
started with the kernel's parent-death signal, so a test run that is killed
outright leaves no process behind either; its namespaces and bridges are swept
by the next run (`sweep_stale`), which removes whatever belongs to a pid no
longer alive.

Needs root and iproute2; `unavailable()` says why it cannot run here, or None.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import random
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

PREFIX = "mc"
_NAME = re.compile(rf"^{PREFIX}([0-9a-f]+)g\d+")
_counter = itertools.count()
_PR_SET_PDEATHSIG = 1


def unavailable() -> str | None:
    """Why network namespaces cannot be made here (None: they can)."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces (ip netns)"
    for tool in ("ip", "unshare", "setpriv"):
        if shutil.which(tool) is None:
            return f"needs `{tool}` (iproute2 / util-linux): run scripts/install-system-deps.sh"
    probe = f"{PREFIX}{os.getpid():x}g{next(_counter)}probe"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def ip(*args: str) -> str:
    """Run `ip ARGS` in this namespace; its output, or CalledProcessError with its message."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, ["ip", *args], done.stdout, done.stderr)
    return done.stdout


def _die_with_parent() -> None:
    # SIGKILL: a host's processes must not outlive the test that started them.
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class Net:
    """A bridge and its /24: the machine is .1, the hosts on it .2 and up."""

    bridge: str
    prefix: str  # "10.213.40"
    _next: itertools.count = field(default_factory=lambda: itertools.count(2))

    def next_address(self) -> str:
        return f"{self.prefix}.{next(self._next)}"


@dataclass
class Host:
    """One network namespace: its addresses per net, and the processes started in it."""

    name: str  # the host name its processes see
    netns: str
    addresses: dict[str, str] = field(default_factory=dict)  # net's bridge -> address
    links: dict[str, str] = field(default_factory=dict)  # net's bridge -> interface in the namespace
    processes: list[subprocess.Popen] = field(default_factory=list)

    def address(self, net: Net) -> str:
        return self.addresses[net.bridge]

    def command(self, argv: Sequence[str], *, own_hostname: bool = True) -> list[str]:
        """argv as run inside this host (`ip netns exec`), under its host name if asked."""
        inner = list(argv)
        if own_hostname:
            # A UTS namespace of its own per process, named after the host; exec keeps the pid.
            inner = ["unshare", "--uts", "--", "sh", "-c", 'hostname "$0" && exec "$@"', self.name, *inner]
        return ["ip", "netns", "exec", self.netns, *inner]

    def run(self, argv: Sequence[str], **kwargs: object) -> subprocess.CompletedProcess:
        """Run a command inside the host and wait for it (text output captured unless redirected)."""
        kwargs = {"capture_output": True, "text": True, **kwargs}
        return subprocess.run(self.command(argv), **kwargs)  # type: ignore[call-overload]

    def popen(self, argv: Sequence[str], **kwargs: object) -> subprocess.Popen:
        """Start a process inside the host; its pid is the command's own (nothing forks in between)."""
        process = subprocess.Popen(self.command(argv), preexec_fn=_die_with_parent, **kwargs)  # type: ignore[call-overload]
        self.processes.append(process)
        return process

    def pids(self) -> list[int]:
        """Every process in the host's network namespace (`ip netns pids`)."""
        out = subprocess.run(["ip", "netns", "pids", self.netns], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def kill_all(self, signum: int = signal.SIGKILL) -> list[int]:
        """Send `signum` to every process of the host; the pids it was sent to."""
        pids = self.pids()
        for pid in pids:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass
        return pids

    def link_down(self, net: Net) -> None:
        """Cut the host's cable into `net`: its veth end goes down (its routes there go with it)."""
        ip("-n", self.netns, "link", "set", self.links[net.bridge], "down")

    def link_up(self, net: Net) -> None:
        ip("-n", self.netns, "link", "set", self.links[net.bridge], "up")


class Hosts:
    """A network of namespaces; `close()` (or the context manager) removes all of it."""

    def __init__(self) -> None:
        self.tag = f"{PREFIX}{os.getpid():x}g{next(_counter)}"
        self.nets: list[Net] = []
        self.hosts: list[Host] = []
        self._octet = random.Random().randrange(100, 250)

    def __enter__(self) -> Hosts:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def net(self) -> Net:
        """A new bridge with a /24 no route of this machine uses yet."""
        bridge = f"{self.tag}b{len(self.nets)}"
        prefix = self._free_prefix()
        ip("link", "add", bridge, "type", "bridge")
        net = Net(bridge, prefix)
        self.nets.append(net)
        ip("addr", "add", f"{prefix}.1/24", "dev", bridge)
        ip("link", "set", bridge, "up")
        return net

    def host(self, name: str, nets: Sequence[Net]) -> Host:
        """A new namespace with one interface on each of `nets` (net{i} inside, in that order)."""
        netns = f"{self.tag}-{name}"
        ip("netns", "add", netns)
        host = Host(name, netns)
        self.hosts.append(host)
        ip("-n", netns, "link", "set", "lo", "up")
        for i, net in enumerate(nets):
            outside = f"{self.tag}h{len(self.hosts)}n{i}"
            inside = f"net{i}"
            ip("link", "add", outside, "type", "veth", "peer", "name", inside, "netns", netns)
            ip("link", "set", outside, "master", net.bridge, "up")
            address = net.next_address()
            ip("-n", netns, "addr", "add", f"{address}/24", "dev", inside)
            ip("-n", netns, "link", "set", inside, "up")
            host.addresses[net.bridge] = address
            host.links[net.bridge] = inside
        return host

    def close(self) -> None:
        """Kill every host's processes, delete the namespaces and the bridges. Never raises."""
        for host in self.hosts:
            _remove_netns(host.netns, host.processes)
        for net in self.nets:
            subprocess.run(["ip", "link", "del", net.bridge], capture_output=True)
        self.hosts.clear()
        self.nets.clear()

    def _free_prefix(self) -> str:
        used = ip("-4", "route", "show")
        while True:
            prefix = f"10.{self._octet}.{random.randrange(0, 255)}"
            if f"{prefix}." not in used:
                return prefix


def _remove_netns(netns: str, processes: Sequence[subprocess.Popen] = ()) -> None:
    deadline = time.monotonic() + 10
    while True:
        out = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True).stdout.split()
        if not out or time.monotonic() > deadline:
            break
        for pid in out:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    for process in processes:  # reap them: no zombies left for the rest of the run
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    subprocess.run(["ip", "netns", "del", netns], capture_output=True)


def sweep_stale() -> None:
    """Remove namespaces and links left by test runs that were killed (their pid is gone)."""

    def stale(name: str) -> bool:
        m = _NAME.match(name)
        if not m:
            return False
        pid = int(m.group(1), 16)
        return pid != os.getpid() and not os.path.exists(f"/proc/{pid}")

    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for line in listed.splitlines():
        name = line.split()[0] if line.split() else ""
        if stale(name):
            _remove_netns(name)
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    for line in links.splitlines():
        parts = line.split(":")
        if len(parts) > 1:
            name = parts[1].strip().split("@")[0]
            if stale(name):
                subprocess.run(["ip", "link", "del", name], capture_output=True)
