"""Who holds an SQLite store's write lock: "pid 1234 (mailconsole template set 7 …)".

In WAL mode SQLite's unix VFS takes POSIX record locks (fcntl F_SETLK) on the
store's `-shm` file; the WAL write lock is byte 120 (os_unix.c: UNIX_SHM_BASE
= (22+SQLITE_SHM_NLOCK)*4 = 120, and WAL_WRITE_LOCK is lock 0 of wal.c; see
also sqlite.org/walformat.html). Whoever holds a write lock on that byte is the
writer everyone else waits for.

We read the kernel's table of locks (/proc/locks) rather than asking with
fcntl(F_GETLK): F_GETLK needs a file descriptor on the `-shm` file, and closing
any descriptor of a file drops *every* POSIX lock this process holds on it,
including the ones SQLite's own connections in this process hold there (the
"POSIX advisory locks cancelled by close()" case of SQLite's how-to-corrupt
page). Reading /proc/locks opens nothing of the store's.

Anything that cannot be known (not Linux, not a local SQLite file, the lock
freed meanwhile, a process of another user) gives None: the name is a help
for the operator, never a condition for anything.
"""

from __future__ import annotations

import os
from pathlib import Path

WAL_WRITE_LOCK_BYTE = 120
MAX_COMMAND = 100  # characters of the holder's command line shown


def holder_pid(db_path: str | os.PathLike[str], locks: str = "/proc/locks") -> int | None:
    """The pid holding the WAL write lock of the SQLite store at db_path, if it can be found."""
    try:
        st = os.stat(f"{os.fspath(db_path)}-shm")
        table = Path(locks).read_text()
    except OSError:
        return None
    device = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in table.splitlines():
        # "1: POSIX  ADVISORY  WRITE 6625 fe:00:2146505 120 120"; waiting requests
        # are listed too, after "->": those do not hold the lock.
        parts = line.split()
        if len(parts) < 8 or "->" in parts[:2] or parts[1] != "POSIX" or parts[3] != "WRITE":
            continue
        if parts[5] != device:
            continue
        try:
            pid, start = int(parts[4]), int(parts[6])
            end = parts[7]
            last = None if end == "EOF" else int(end)
        except ValueError:
            continue
        if pid > 0 and start <= WAL_WRITE_LOCK_BYTE and (last is None or WAL_WRITE_LOCK_BYTE <= last):
            return pid
    return None


def _escaped(text: str) -> str:
    """Control characters and bidirectional overrides as \\xNN / \\uNNNN: a process may name itself anything."""
    out = []
    for ch in text:
        if ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(f"\\u{ord(ch):04x}")
    return "".join(out)


def command_of(pid: int, proc: str = "/proc") -> str | None:
    """The command line of pid, shortened, escaped and bounded in length; None if unknown."""
    try:
        raw = Path(proc, str(pid), "cmdline").read_bytes()
    except OSError:
        return None
    args = [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]
    if not args:
        return None
    # "/venv/bin/python /venv/bin/mailconsole template set 7" reads better as
    # "mailconsole template set 7": the interpreter says nothing to an operator.
    if os.path.basename(args[0]).startswith("python") and len(args) > 1 and not args[1].startswith("-"):
        args = args[1:]
    args[0] = os.path.basename(args[0])
    text = _escaped(" ".join(args))
    if len(text) > MAX_COMMAND:
        text = text[: MAX_COMMAND - 1] + "…"
    return text


def describe(db_path: str | os.PathLike[str]) -> str | None:
    """'pid N (command)' of the writer holding the store's write lock, or None."""
    pid = holder_pid(db_path)
    if pid is None:
        return None
    if pid == os.getpid():
        return f"pid {pid} (this process)"
    command = command_of(pid)
    return f"pid {pid} ({command})" if command else f"pid {pid}"
