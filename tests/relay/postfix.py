"""A private Postfix relay for tests, and the recording next hop it relays to.

The instance lives wholly in a temporary directory: its own configuration
directory (main.cf, master.cf), queue_directory and data_directory, smtpd on a
free loopback port, its log in a file there (postlogd, Postfix >= 3.4: start-up
errors go there too rather than only to syslog). The machine's own /etc/postfix
is never read or written: every command gets `-c DIR`.

Postfix runs as root (master and postsuper need it) and drops to the `postfix`
user; the temporary directory is made traversable for that user.
"""

from __future__ import annotations

import asyncio
import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from aiosmtpd.controller import Controller

POSTFIX = "/usr/sbin/postfix"
CONCURRENCY = 10  # the relay's delivery concurrency to its next hop


def unavailable() -> str | None:
    """Why a private Postfix cannot run here, or None."""
    if not os.path.exists(POSTFIX):
        return "Postfix is not installed (scripts/install-system-deps.sh installs it)"
    if os.geteuid() != 0:
        return "a private Postfix instance needs root (its master and postsuper)"
    try:
        pwd.getpwnam("postfix")
    except KeyError:
        return "the postfix user does not exist (the postfix package creates it)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the next hop --------------------------------------------------------------

@dataclass
class Delivery:
    recipient: str
    at: float  # time.time() when the next hop answered the dot


@dataclass
class NextHop:
    """The relay's next hop: records every message it accepted, when, for whom.

    `delay` slows each reply to the dot (so the relay's queue fills); recipients
    in `refuse` get 550 at RCPT (the relay bounces them), those in `defer` 450
    (the relay keeps them in its deferred queue and tries again).
    """

    delay: float = 0.0
    refuse: set[str] = field(default_factory=set)
    defer: set[str] = field(default_factory=set)
    deliveries: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        if address in self.refuse:
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        if address in self.defer:
            return "450 4.2.1 <%s>: Mailbox busy, try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        if self.delay:
            await asyncio.sleep(self.delay)
        now = time.time()
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.deliveries.append(Delivery(rcpt, now))
        return "250 2.0.0 Ok: accepted"

    def recipients(self, *, after: float = 0.0, ending: str = "") -> list[str]:
        with self.lock:
            return [d.recipient for d in self.deliveries if d.at > after and d.recipient.endswith(ending)]


class NextHopServer:
    def __init__(self, hop: NextHop) -> None:
        self.hop = hop
        self.port = free_port()
        self._controller = Controller(hop, hostname="127.0.0.1", port=self.port)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()


# -- the relay -----------------------------------------------------------------

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {base}/queue
data_directory = {base}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = relay.test
mydomain = test
myorigin = relay.test
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:{next_hop}
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = permit_mynetworks, reject
local_recipient_maps =
alias_maps =
alias_database =
biff = no
smtp_tls_security_level = none
smtpd_tls_security_level = none
maillog_file = {base}/log/maillog
maillog_file_prefixes = {base}/log
default_destination_concurrency_limit = {concurrency}
initial_destination_concurrency = {concurrency}
smtp_connection_cache_on_demand = yes
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
anvil_rate_time_unit = 60s
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
bounce_queue_lifetime = 0
delay_warning_time = 0h
"""

# chroot off for every service (column 5 "n"): the instance has no chroot tree.
MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n -  0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n -  - trivial-rewrite
bounce    unix  - - n -  0 bounce
defer     unix  - - n -  0 bounce
trace     unix  - - n -  0 bounce
verify    unix  - - n -  1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -  - proxymap
proxywrite unix - - n -  1 proxymap
smtp      unix  - - n -  - smtp
relay     unix  - - n -  - smtp
showq     unix  n - n -  - showq
error     unix  - - n -  - error
retry     unix  - - n -  - error
discard   unix  - - n -  - discard
local     unix  - n n -  - local
anvil     unix  - - n -  1 anvil
scache    unix  - - n -  1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


class PostfixError(Exception):
    pass


class PrivatePostfix:
    """A Postfix instance in `base`, relaying everything to 127.0.0.1:`next_hop`."""

    def __init__(self, base: Path, next_hop: int, *, concurrency: int = CONCURRENCY) -> None:
        self.base = base
        self.config = base / "etc"
        self.port = free_port()
        self.maillog = base / "log" / "maillog"
        self.concurrency = concurrency
        self._next_hop = next_hop

    @property
    def relay(self) -> str:
        """host:port the engine sends to."""
        return f"127.0.0.1:{self.port}"

    def write_config(self) -> None:
        for d in ("etc", "queue", "data", "log"):
            (self.base / d).mkdir(parents=True, exist_ok=True)
        (self.config / "main.cf").write_text(
            MAIN_CF.format(base=self.base, next_hop=self._next_hop, concurrency=self.concurrency))
        (self.config / "master.cf").write_text(MASTER_CF.format(port=self.port))
        postfix = pwd.getpwnam("postfix")
        os.chown(self.base / "data", postfix.pw_uid, postfix.pw_gid)
        # The postfix user walks down to the queue: every directory above must be searchable.
        path = self.base
        while path != path.parent:
            mode = path.stat().st_mode
            if not mode & 0o001:
                os.chmod(path, mode | 0o011)
            path = path.parent

    def command(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a Postfix program (postfix, postsuper, postqueue...) against this instance."""
        program, *rest = args
        proc = subprocess.run([f"/usr/sbin/{program}", "-c", str(self.config), *rest], input=stdin,
                              capture_output=True, text=True, timeout=60)
        if check and proc.returncode != 0:
            raise PostfixError(f"{program} {' '.join(rest)}: exit {proc.returncode}: {proc.stderr.strip()}"
                               f"\n--- maillog ---\n{self.log_text()[-3000:]}")
        return proc

    def start(self, timeout: float = 30.0) -> None:
        self.write_config()
        self.command("postfix", "check")
        self.command("postfix", "start")
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until smtpd greets on its port (master has started and the queue manager runs)."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    s.settimeout(5)
                    if s.recv(512).startswith(b"220"):
                        s.sendall(b"QUIT\r\n")
                        return
            except OSError as exc:
                last = exc
            time.sleep(0.05)
        raise PostfixError(f"the private Postfix on port {self.port} did not greet within {timeout:g} s ({last})"
                           f"\n--- maillog ---\n{self.log_text()[-3000:]}")

    def stop(self) -> None:
        self.command("postfix", "stop", check=False)
        # `postfix stop` returns before master has exited: wait for its pid file to go.
        pid_file = self.base / "queue" / "pid" / "master.pid"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                pid = int(pid_file.read_text().split()[0])
                os.kill(pid, 0)
            except (FileNotFoundError, ValueError, IndexError, ProcessLookupError):
                return
            time.sleep(0.05)

    def start_again(self, timeout: float = 30.0) -> None:
        """`postfix start` after a stop. A session cut by the stop can leave a temporary
        file in incoming/ ("bogus file name"); start-up's postsuper would warn about it
        and, with postlogd not yet running, fail to open the log as root: removed first,
        as that postsuper would."""
        for stray in (self.base / "queue" / "incoming").glob("*.*"):
            stray.unlink(missing_ok=True)
        self.command("postfix", "start")
        self.wait_ready(timeout)

    def abort(self) -> None:
        """Stop at once (`postfix abort`), for tests of a relay that went away."""
        self.command("postfix", "abort", check=False)
        self.stop()

    def flush(self) -> None:
        self.command("postqueue", "-f", check=False)

    def log_text(self) -> str:
        try:
            return self.maillog.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def queue(self) -> list[dict]:
        """postqueue -j: one object per queued message."""
        out = self.command("postqueue", "-j").stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def queue_size(self) -> int:
        return len(self.queue())

    def held(self) -> set[str]:
        return {m["queue_id"] for m in self.queue() if m["queue_name"] == "hold"}

    def wait_empty(self, timeout: float = 60.0, *, ignore_held: bool = True) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rest = [m for m in self.queue() if not (ignore_held and m["queue_name"] == "hold")]
            if not rest:
                return
            time.sleep(0.1)
        raise PostfixError(f"the relay still holds {len(rest)} messages after {timeout:g} s")

    def delivering(self) -> set[str]:
        """Queue ids whose file a process of this instance has open (a delivery under way),
        read from /proc independently of the agent's own look."""
        queue = str(self.base / "queue")
        found = set()
        for fd in glob.glob("/proc/[0-9]*/fd/*"):
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith(queue) and os.path.basename(os.path.dirname(target)) in ("active", "hold"):
                found.add(os.path.basename(target))
        return found

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


def count(items: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        out[item] = out.get(item, 0) + 1
    return out
