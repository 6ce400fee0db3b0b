"""The stop intent: on one host, engines honour a stop before the store has it.

A stop that cannot take the write lock at once (another writer holds it) first
writes an intent file beside the store, one per account, then waits for the
lock. Every engine on the host reads the intent directory at the final-dot
gate, just before its read of the stop state, and treats an account with a
live intent as stopped: the dot is refused and the message goes back to the
queue; the claimer claims nothing of it. Engines acknowledge nothing for it:
the acknowledgement follows the store's generation, which only the real
stop's commit raises.

Order, and why it holds (see docs/reliability.md):
  stop:  write intent (fsync) -> pass the dot fence -> ... commit -> remove intent
  gate:  hold the fence -> list intents -> read the store
A gate visit that holds the fence after the stop passed it lists the intent (it
was renamed in before); one that lists no intent because it was removed reads
the store after the removal, so after the commit, and sees the stop itself.

An intent is spent once the account's committed generation reaches the one it
names; engines ignore spent intents, so a stale file after the commit is
harmless. An intent whose writer died before its commit is stale: it keeps
holding the account's mail (fail closed) until an operator acts: `stop` applies
it, `resume` clears it; `status` shows it.

Only stores that are local files have intents (the directory is beside the
file: its backend's `intent_dir`); other stores wait for the lock as before.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from collections.abc import Iterator

from .actor import Actor

SUFFIX = ".intent"


def intent_dir(store: object) -> str | None:
    """`<store file>-stop-intents`, or None for a store that is not a local file."""
    return store.backend.intent_dir  # type: ignore[attr-defined, no-any-return]


@dataclass(frozen=True)
class Intent:
    account_id: int
    account: str
    generation: int  # the stop generation the stop will create; spent once committed
    at: float
    actor: str
    host: str
    pid: int
    path: str

    def writer_alive(self) -> bool:
        """Whether the process that wrote it may still be applying it (same host, pid exists)."""
        if self.host != socket.gethostname():
            return True  # cannot know: assume it is
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def as_dict(self) -> dict:
        return {"account_id": self.account_id, "account": self.account, "generation": self.generation,
                "at": self.at, "actor": self.actor, "host": self.host, "pid": self.pid,
                "writer_alive": self.writer_alive()}


# -- the engines' side: cheap, called at every gate read and claim ------------

def held(directory: str | None) -> list[tuple[int, int | None]]:
    """(account id, generation named) per intent file; generation None if unreadable.

    An empty directory costs one listdir (a few µs). An unreadable intent holds
    its account whatever the generation (fail closed); a file removed between
    the listing and the read was removed after its stop committed, and the
    store read that follows sees that stop.
    """
    if directory is None:
        return []
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    except OSError:
        return []
    out: list[tuple[int, int | None]] = []
    for name in names:
        if not name.endswith(SUFFIX) or not name[: -len(SUFFIX)].isdigit():
            continue  # a temporary file not yet renamed in, or the lock file
        acc = int(name[: -len(SUFFIX)])
        try:
            with open(os.path.join(directory, name), "rb") as f:
                generation = int(json.loads(f.read(4096))["generation"])
        except FileNotFoundError:
            continue
        except (OSError, ValueError, KeyError, TypeError):
            generation = None
        out.append((acc, generation))
    return out


def held_accounts(intents: list[tuple[int, int | None]], generations: dict[int, int]) -> set[int]:
    """Accounts an engine must treat as stopped: a live intent, its generation not yet committed."""
    return {acc for acc, gen in intents if gen is None or generations.get(acc, -1) < gen}


# -- the stop's side ----------------------------------------------------------

@contextmanager
def _locked(directory: str) -> Iterator[None]:
    """Serialises writers and removers (two stops of one account, a resume clearing one)."""
    fd = os.open(os.path.join(directory, ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write(store: object, account_id: int, account: str, generation: int, actor: Actor, at: float) -> Intent | None:
    """Durably post an intent to create stop `generation` of the account; None where there are none.

    Atomic: written to a temporary file, synced, renamed in, the directory
    synced; a reader sees the whole intent or none.
    """
    directory = intent_dir(store)
    if directory is None:
        return None
    os.makedirs(directory, mode=0o700, exist_ok=True)
    path = os.path.join(directory, f"{account_id}{SUFFIX}")
    intent = Intent(account_id, account, generation, at, actor.user, socket.gethostname(), os.getpid(), path)
    body = json.dumps({k: v for k, v in intent.as_dict().items() if k != "writer_alive"}).encode()
    with _locked(directory):
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")  # mode 0600
        try:
            os.write(fd, body)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        _fsync_dir(directory)
    return intent


def read_all(store: object) -> list[Intent]:
    """Every intent file of the store (spent or not), for status and resume."""
    directory = intent_dir(store)
    out: list[Intent] = []
    if directory is None:
        return out
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return out
    for name in names:
        if not name.endswith(SUFFIX) or not name[: -len(SUFFIX)].isdigit():
            continue
        path = os.path.join(directory, name)
        try:
            with open(path, "rb") as f:
                d = json.loads(f.read(4096))
            out.append(Intent(int(d["account_id"]), str(d["account"]), int(d["generation"]), float(d["at"]),
                              str(d["actor"]), str(d["host"]), int(d["pid"]), path))
        except FileNotFoundError:
            continue
        except (OSError, ValueError, KeyError, TypeError):
            # Unreadable: it still holds the account (see held()); show it as stale.
            out.append(Intent(int(name[: -len(SUFFIX)]), "?", -1, 0.0, "?", "?", 0, path))
    return out


def pending(store: object, account_id: int, generation: int) -> Intent | None:
    """The account's intent that engines honour now (not yet spent), if any."""
    for intent in read_all(store):
        if intent.account_id == account_id and (intent.generation < 0 or intent.generation > generation):
            return intent
    return None


def remove(store: object, account_id: int, up_to_generation: int | None = None) -> bool:
    """Remove the account's intent once spent (its generation <= up_to_generation), or any if None.

    Under the writers' lock, so that a newer intent written meanwhile by another
    stop is not removed by this one. Never raises for the file system: it runs
    after a committed stop, which a failure here must not make look failed (a
    spent intent left behind is ignored).
    """
    try:
        return _remove(store, account_id, up_to_generation)
    except OSError:
        return False


def _remove(store: object, account_id: int, up_to_generation: int | None) -> bool:
    directory = intent_dir(store)
    if directory is None or not os.path.isdir(directory):
        return False
    path = os.path.join(directory, f"{account_id}{SUFFIX}")
    with _locked(directory):
        if up_to_generation is not None:
            try:
                with open(path, "rb") as f:
                    generation = int(json.loads(f.read(4096))["generation"])
            except FileNotFoundError:
                return False
            except (OSError, ValueError, KeyError, TypeError):
                generation = None  # unreadable: a committed stop supersedes it
            if generation is not None and generation > up_to_generation:
                return False
        try:
            os.unlink(path)
        except FileNotFoundError:
            return False
        _fsync_dir(directory)
    return True
