"""The relay interface for Postfix, with Postfix's own tools.

    list      postqueue -j             one JSON object per queued message
    hold      postsuper -h -           queue ids on standard input (as root: its rename
                                       into hold/ done here, logged by postlog)
    release   postsuper -H -
    delete    postsuper -d -
    outcomes  its mail log             `ID: to=<…>, …, status=sent|deferred|bounced (…)`
    delivering  /proc/PID/fd           held queue files its delivery agents still have open

postsuper reports each id it acted on ("ID: placed on hold", "released from
hold", "removed") on standard error: those, and only those, are what a call
returns. postsuper must run as root; postqueue -j needs the mail system up.
`-c DIR` selects a configuration other than the default one (a second
instance). The log is the instance's maillog_file (Postfix >= 3.4), or a path
given (the syslog file), followed across rotation.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import re
import subprocess
import time
from collections.abc import Iterable

from .interface import Outcome, Queued, RelayError
from .logfollow import LogFollower

TIMEOUT = 30.0
PARALLEL = 4  # postsuper processes at most per operation
PER_PROCESS_AT_LEAST = 16  # ids: fewer are not worth another process
_ACTED = {
    "-h": re.compile(r"^postsuper: ([0-9A-Za-z]+): placed on hold$"),
    "-H": re.compile(r"^postsuper: ([0-9A-Za-z]+): released from hold$"),
    "-d": re.compile(r"^postsuper: ([0-9A-Za-z]+): removed$"),
}
# One delivery attempt's result for one recipient (our messages have one each).
_DELIVERY = re.compile(
    r"\]: (?P<id>[0-9A-Za-z]+): to=<[^>]*>, .*?\bstatus=(?P<status>sent|bounced|deferred|expired)"
    r"(?: \((?P<reply>.*)\))?\s*$"
)
_STATUS = {"sent": "delivered", "bounced": "bounced", "expired": "bounced", "deferred": "deferred"}
_STARTED = re.compile(r"postfix/master\[\d+\]: daemon started")


class PostfixQueue:
    def __init__(self, config_dir: str | None = None, log_path: str | None = None) -> None:
        self.config_dir = config_dir
        self._c = ["-c", config_dir] if config_dir else []
        self.name = f"postfix ({config_dir or 'default configuration'})"
        self._events: list[str] = []
        self.log_path = log_path or self._setting("maillog_file")
        if not self.log_path:
            raise RelayError("Postfix logs to syslog here (maillog_file is empty): give the log file with --postfix-log")
        # From the start of the current file: outcomes logged while the agent was
        # down are recorded too (those already recorded change nothing).
        self._log = LogFollower(self.log_path)
        self.queue_directory = self._setting("queue_directory")
        self._hold_hashed = "hold" in re.split(r"[\s,]+", self._setting("hash_queue_names"))
        try:  # the user the relay's delivery agents run as: see delivering()
            self._owner: int | None = pwd.getpwnam(self._setting("mail_owner")).pw_uid
        except KeyError:
            self._owner = None
        self._loggers: list[subprocess.Popen[str]] = []
        self._rotations = 0
        self._caught_up = False  # the first read is the backlog: a start-up in it is not news
        self._checked_at = -1e9
        self._running = True

    def _setting(self, name: str) -> str:
        try:
            proc = subprocess.run(["postconf", *self._c, "-h", name], capture_output=True, text=True, timeout=TIMEOUT)
        except FileNotFoundError:
            raise RelayError("postconf is not installed (Postfix's tools are needed beside the relay)") from None
        if proc.returncode != 0:
            raise RelayError(f"postconf {name}: {_first_error(proc.stderr) or f'exit {proc.returncode}'}")
        return proc.stdout.strip()

    # -- queue operations ----------------------------------------------------

    def _postsuper(self, flag: str, queue_ids: Iterable[str]) -> set[str]:
        """One operation on many ids, split over up to PARALLEL postsuper processes.

        The relay delivers from its queue in no order we can know, so every id
        counts the same and only the whole run's length matters: postsuper spends
        most of it waiting to log each id (~0.3 ms), and several processes wait
        side by side (1,000 ids: ~0.4 s in one, ~0.15 s in four).
        """
        ids = [q for q in queue_ids if q.isalnum()]  # nothing else may reach its standard input
        if not ids:
            return set()
        parts = max(1, min(PARALLEL, len(ids) // PER_PROCESS_AT_LEAST))
        chunks = [ids[i::parts] for i in range(parts)]
        try:
            procs = [subprocess.Popen(["postsuper", *self._c, flag, "-"], stdin=subprocess.PIPE,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                     for _ in chunks]
        except FileNotFoundError:
            raise RelayError("postsuper is not installed (Postfix's tools are needed beside the relay)") from None
        acted: set[str] = set()
        errors = []
        for proc, chunk in zip(procs, chunks):
            try:
                _, stderr = proc.communicate("\n".join(chunk) + "\n", timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, stderr = proc.communicate()
                errors.append(f"did not finish within {TIMEOUT:g} s")
            acted |= {m.group(1) for line in stderr.splitlines() if (m := _ACTED[flag].match(line))}
            if proc.returncode != 0:
                errors.append(_first_error(stderr) or f"exit {proc.returncode}")
        acted &= set(ids)
        if errors:
            raise RelayError(f"postsuper {flag}: {errors[0]}", acted)
        return acted

    def hold(self, queue_ids: Iterable[str]) -> set[str]:
        """Put on hold in the order given (the agent gives the ones the relay delivers next first).

        As root, and with the hold queue not hashed, by what postsuper -h does
        itself for each id (a rename into hold/, nothing else: strace shows it),
        without postsuper's cost: a process, a log line sent to the log daemon
        and three stats per id, ~0.1-0.4 ms on this machine against ~0.05 ms for
        the rename alone. The log lines postsuper would write are written after
        the renames, by one postlog process. Otherwise (not root: postsuper says
        why) by postsuper.
        """
        if os.geteuid() != 0 or self._hold_hashed:
            return self._postsuper("-h", queue_ids)
        return self._hold_by_rename([q for q in queue_ids if q.isalnum()])

    def _hold_by_rename(self, ids: list[str]) -> set[str]:
        if not ids:
            return set()
        base = self.queue_directory
        where = self._queue_files(("active", "incoming", "deferred"))
        target = os.path.join(base, "hold")
        acted: set[str] = set()
        errors: list[str] = []
        for q in ids:
            # Found by one listing of each queue; one that moved since (incoming ->
            # active, deferred -> active) is looked for where it can have gone.
            for path in (where.get(q), os.path.join(base, "active", q), os.path.join(base, "incoming", q)):
                if path is None:
                    continue
                try:
                    os.rename(path, os.path.join(target, q))
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    errors.append(f"{q}: {exc.strerror}")
                    break
                acted.add(q)
                break
        self._log_holds(sorted(acted))
        if errors:
            raise RelayError(f"hold: {errors[0]}", acted)
        return acted

    def _queue_files(self, queues: Iterable[str]) -> dict[str, str]:
        """Queue id -> path of every file in these queues (hashed ones walked down their subdirectories)."""
        out: dict[str, str] = {}

        def walk(directory: str) -> None:
            try:
                entries = list(os.scandir(directory))
            except FileNotFoundError:
                return
            for e in entries:
                if e.is_dir(follow_symlinks=False):
                    walk(e.path)
                else:
                    out[e.name] = e.path

        for name in queues:
            walk(os.path.join(self.queue_directory, name))
        return out

    def _log_holds(self, ids: list[str]) -> None:
        """The relay's log says what was held, as postsuper's own lines would (off the hold's path)."""
        self._loggers = [p for p in self._loggers if p.poll() is None]
        if not ids:
            return
        try:
            proc = subprocess.Popen(["postlog", *self._c, "-t", "postfix/postsuper"], stdin=subprocess.PIPE,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
        except OSError:
            return  # the hold is done; only its log lines are missing
        self._loggers.append(proc)
        try:
            assert proc.stdin is not None
            proc.stdin.write("".join(f"{q}: placed on hold\n" for q in ids))
            proc.stdin.close()
        except OSError:
            pass

    def delivering(self, queue_ids: Iterable[str]) -> set[str]:
        """Held ids whose queue file a process of the relay still has open: its delivery agent
        (smtp) keeps the file open for the whole delivery, so what is open in hold/ after the
        hold is what the relay was delivering as it was held. From /proc (as root: the
        processes run as the mail owner); ~1 ms. Without access nothing is found, and the
        relay's log tells these deliveries only as they finish."""
        wanted = {q for q in queue_ids if q.isalnum()}
        hold = os.path.join(self.queue_directory, "hold") + os.sep
        if not wanted or self._owner is None:
            return set()
        found: set[str] = set()
        try:
            processes = list(os.scandir("/proc"))
        except OSError:
            return set()
        for proc in processes:
            if not proc.name.isdigit():
                continue
            try:
                if proc.stat().st_uid != self._owner:
                    continue
                fds = os.listdir(os.path.join(proc.path, "fd"))
            except OSError:  # gone meanwhile, or not ours to read
                continue
            for fd in fds:
                try:
                    target = os.readlink(os.path.join(proc.path, "fd", fd))
                except OSError:
                    continue
                if target.startswith(hold) and (name := os.path.basename(target)) in wanted:
                    found.add(name)
        return found

    def locate(self, queue_ids: Iterable[str]) -> dict[str, str]:
        """Which queue each id is in (absent: not in the relay's queue), from the queue's
        directories (as root, the agent can read them): no showq round trip."""
        out = {}
        base = self.queue_directory
        if not os.access(os.path.join(base, "active"), os.X_OK):
            # Else every id would look gone: nothing there to hold, the stop honoured.
            raise RelayError(f"cannot look into the relay's queue {base}: permission denied (run the agent as root)")
        for q in queue_ids:
            if not q.isalnum():
                continue
            for name in ("hold", "active", "incoming"):
                if os.path.exists(os.path.join(base, name, q)):
                    out[q] = name
                    break
            else:
                if glob.glob(os.path.join(glob.escape(base), "deferred", "*", q)) or os.path.exists(
                        os.path.join(base, "deferred", q)):
                    out[q] = "deferred"
        return out

    def release(self, queue_ids: Iterable[str]) -> set[str]:
        return self._postsuper("-H", queue_ids)

    def delete(self, queue_ids: Iterable[str]) -> set[str]:
        return self._postsuper("-d", queue_ids)

    def list(self) -> list[Queued]:
        try:
            proc = subprocess.run(["postqueue", *self._c, "-j"], capture_output=True, text=True, timeout=TIMEOUT)
        except FileNotFoundError:
            raise RelayError("postqueue is not installed") from None
        except subprocess.TimeoutExpired:
            raise RelayError(f"postqueue -j did not finish within {TIMEOUT:g} s") from None
        if proc.returncode != 0:
            raise RelayError(f"postqueue -j: {_first_error(proc.stderr) or f'exit {proc.returncode}'}")
        out = []
        for line in proc.stdout.splitlines():
            try:
                entry = json.loads(line)
                out.append(Queued(str(entry["queue_id"]), str(entry["queue_name"]), float(entry.get("arrival_time", 0))))
            except (ValueError, KeyError, TypeError):
                continue
        return out

    # -- the log -------------------------------------------------------------

    def outcomes(self) -> list[Outcome]:
        now = time.time()
        out = []
        for line in self._log.lines():
            m = _DELIVERY.search(line)
            if m is not None:
                out.append(Outcome(m.group("id"), _STATUS[m.group("status")], m.group("reply") or "", now))
            elif self._caught_up and _STARTED.search(line):
                self._events.append(f"relay restarted at {time.strftime('%H:%M:%S', time.gmtime(now))} UTC")
        self._caught_up = True
        if self._log.rotations != self._rotations:
            self._rotations = self._log.rotations
            self._events.append(f"log {self.log_path} rotated at {time.strftime('%H:%M:%S', time.gmtime(now))} UTC; "
                                "following the new file")
        return out

    def events(self) -> list[str]:
        events, self._events = self._events, []
        return events

    def down(self) -> str | None:
        if self.running():
            return None
        return "the relay is down (no Postfix master running); holds still apply to its queue files"

    def running(self) -> bool:
        """Whether the instance's master process runs (its pid file names a live process), checked at most every 100 ms."""
        now = time.monotonic()
        if now - self._checked_at < 0.1:
            return self._running
        self._checked_at = now
        try:
            with open(os.path.join(self.queue_directory, "pid", "master.pid")) as f:
                os.kill(int(f.read().split()[0]), 0)
            self._running = True
        except (OSError, ValueError, IndexError):
            self._running = False
        return self._running

    def close(self) -> None:
        self._log.close()
        for proc in self._loggers:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()


def _first_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if "fatal" in line or "error" in line] or stderr.splitlines()
    return lines[0].strip()[:300] if lines else ""

