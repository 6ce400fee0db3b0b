"""The demo store: realistic mailings in every state, built through the store's own API."""

from __future__ import annotations

import atexit
import fcntl
import os
import random
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import platformdirs

from .store import Actor, Store
from .store import queue, revisions
from .store.engines import live_engines
from .store.errors import Refused, StoreError
from .store.importer import create_mailing
from .store.mailings import list_mailings

FIRST = ["Ada", "Grace", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Frances", "Alan", "Radia",
         "Edsger", "Hedy", "John", "Katherine", "Donald", "Annie", "Tim", "Sophie", "Niklaus", "Joan"]
CITIES = ["Berlin", "Lisbon", "Oslo", "Porto", "Vienna", "Lyon", "Turin", "Ghent", "Krakow", "Tartu"]
DEMO_ACTOR = Actor("demo")
SENDER = "news@shop.example"


def default_demo_path() -> Path:
    return Path(platformdirs.user_data_dir("mailconsole")) / "demo.db"


@contextmanager
def demo_lock(store_path: Path) -> Iterator[None]:
    """Held for as long as a demo runs on `store_path`; a second demo is refused meanwhile.

    Each demo recreates the default store, so a second one deleted the store
    under the first. An flock on a file beside the store is released by the
    kernel however the holder ends (even kill -9), so a crashed demo never
    blocks the next. The lock file itself stays: removing it would let a third
    demo lock a new file while the second still holds the old one.
    """
    lock = Path(str(store_path) + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            raise Refused(f"the demo store {store_path} is in use by another `mailconsole demo` (pid {holder}); "
                          "quit that one first, or give this one its own store with --db NEW.db") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def fresh_demo_store(path: Path | None = None, *, clock: Callable[[], float] | None = None) -> Store:
    """A new, empty demo store: the default demo file is recreated on every run.

    The caller holds `demo_lock` around the whole demo. An engine still beating in
    the old default store (a console opened on it) makes this refuse instead.
    """
    target = path or default_demo_path()
    if path is None:
        if target.exists():
            try:
                old = Store(str(target), create=False)
            except StoreError:
                busy = []  # not a store this version can read: nothing of ours sends from it
            else:
                try:
                    busy = live_engines(old)
                finally:
                    old.close()
            if busy:
                raise Refused(f"the demo store {target} is in use: an engine (pid {busy[0].pid} on "
                              f"{busy[0].host}) sends from it; quit that console first")
        for suffix in ("", "-wal", "-shm"):
            Path(str(target) + suffix).unlink(missing_ok=True)
    store = Store(str(target), **({"clock": clock} if clock else {}))
    if list_mailings(store, planned=True):
        store.close()
        raise Refused(f"{target} already holds mailings; the demo needs a new or empty store")
    return store


def _scratch() -> Path:
    """A directory for the demo's contact files, removed when the process ends at the latest."""
    work = Path(tempfile.mkdtemp(prefix="mailconsole-demo-"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    return work


def write_contacts(path: Path, count: int, seed: int, domain: str = "example.net") -> Path:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write("email,first_name,city\n")
        for i in range(count):
            first = rng.choice(FIRST)
            f.write(f"{first.lower()}.{i}@{domain},{first},{rng.choice(CITIES)}\n")
    return path


def _simulate_sent(store: Store, mailing_id: int, count: int) -> None:
    """Move `count` messages through the real claim/record path, as an engine would."""
    rev = revisions.newest_revision(store, mailing_id)
    assert rev is not None
    left = count
    while left > 0:
        claimed = [c for c in queue.claim(store, "demo-history", min(500, left), 60) if c.mailing_id == mailing_id]
        if not claimed:
            break
        queue.record(store, "demo-history", [queue.Outcome(c.id, c.mailing_id, "sent", rev.id) for c in claimed])
        left -= len(claimed)


def seed(store: Store, *, large: int = 50_000, workdir: Path | None = None) -> dict[str, int]:
    """Fill the store: one finished, one sending with a corrected template, one planned for tomorrow.

    The preparing mailing is started separately (start_preparing) because
    preparing is something that happens over time.
    """
    if workdir is None:
        work = _scratch()
        try:
            return seed(store, large=large, workdir=work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    work = workdir
    now = store.now()
    ids: dict[str, int] = {}

    ids["finished"] = create_mailing(
        store, DEMO_ACTOR, name="November newsletter", sender=SENDER,
        subject="What's new in November, {{ first_name }}",
        text_body="Hello {{ first_name }},\n\nour November news from {{ city }} and elsewhere.\n",
        html_body=None, recipients=write_contacts(work / "newsletter.csv", 1_200, 1),
    ).mailing_id
    _simulate_sent(store, ids["finished"], 1_200)

    ids["sending"] = create_mailing(
        store, DEMO_ACTOR, name="Black Friday: 30% off", sender=SENDER,
        subject="{{ first_name }}, 300% off everything today",
        text_body="Hello {{ first_name }},\n\neverything in our {{ city }} store is 300% off today only.\n",
        html_body="<p>Hello {{ first_name }},</p><p>everything in our {{ city }} store is <b>300% off</b>.</p>",
        recipients=write_contacts(work / "black-friday.csv", large, 2),
        list_unsubscribe="<mailto:unsubscribe@shop.example>",
    ).mailing_id
    # The wrong discount went out to some before it was caught and corrected.
    _simulate_sent(store, ids["sending"], 1_234)
    revisions.save_revision(
        store, DEMO_ACTOR, ids["sending"],
        subject="{{ first_name }}, 30% off everything today",
        text_body="Hello {{ first_name }},\n\neverything in our {{ city }} store is 30% off today only.\n",
        html_body="<p>Hello {{ first_name }},</p><p>everything in our {{ city }} store is <b>30% off</b>.</p>",
    )

    ids["planned"] = create_mailing(
        store, DEMO_ACTOR, name="Advent calendar day 1", sender=SENDER,
        subject="Door 1 opens today, {{ first_name }}",
        text_body="Hello {{ first_name }},\n\nthe first door of our advent calendar is open.\n",
        html_body=None, recipients=write_contacts(work / "advent.csv", 8_000, 3), at=now + 86_400,
    ).mailing_id
    return ids


def start_preparing(store: Store, *, rows: int = 20_000, batch: int = 500, pause: float = 0.5,
                    workdir: Path | None = None) -> threading.Thread:
    """Import a mailing slowly in a thread, so it is visible (and deletable) while preparing."""
    work = workdir or _scratch()
    csv_path = write_contacts(work / "winter-sale.csv", rows, 4)
    stop = threading.Event()

    def slow(done: int, total: int) -> None:
        stop.wait(pause)

    def run() -> None:
        try:
            create_mailing(
                store, DEMO_ACTOR, name="Winter sale", sender=SENDER,
                subject="Winter sale, {{ first_name }}", text_body="Hello {{ first_name }}, winter sale now on.\n",
                html_body=None, recipients=csv_path, batch_size=batch, progress=slow,
            )
        except Exception:
            pass  # deleted by the operator while preparing: that is the point of the demo
        finally:
            if workdir is None:
                shutil.rmtree(work, ignore_errors=True)

    thread = threading.Thread(target=run, name="demo-import", daemon=True)
    thread.stop_event = stop  # type: ignore[attr-defined]
    thread.start()
    return thread


__all__ = ["demo_lock", "fresh_demo_store", "seed", "start_preparing", "write_contacts"]
