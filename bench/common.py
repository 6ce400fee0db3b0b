"""Shared by the benchmarks: a store with one big mailing, engine processes, polling."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from mailconsole.store import Actor, Store
from mailconsole.store.importer import create_mailing
from mailconsole.store.mailings import get_mailing

# ~2 KB of text around two merge fields, as in the throughput benchmark.
BODY = (
    "Dear {{ name }},\n\nyour personal code is {{ code }}.\n\n"
    + "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\n" * 24
    + "\nKind regards,\nThe shop\n"
)
SUBJECT = "Hello {{ name }}, your code {{ code }}"


def make_store(db: Path, n: int, work: Path) -> tuple[Store, int]:
    """A fresh store at `db` with one sending mailing of n recipients."""
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    recipients = work / f"recipients-{n}.csv"
    if not recipients.exists():
        with recipients.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["email", "name", "code"])
            for i in range(n):
                w.writerow([f"user{i}@example.com", f"User {i}", f"C{i:07d}"])
    store = Store(str(db))
    result = create_mailing(
        store, Actor("bench"), name="bench", sender="shop@example.com",
        subject=SUBJECT, text_body=BODY, html_body=None, recipients=recipients,
    )
    return store, result.mailing_id


def queue_mailing(store: Store, directory: Path, n: int, *, name: str, text_body: str) -> int:
    """One sending mailing of n recipients with one short merge field: the console benches' store."""
    recipients = directory / "recipients.csv"
    with recipients.open("w") as f:
        f.write("email,first_name\n")
        for i in range(n):
            f.write(f"r{i}@example.org,N{i}\n")
    return create_mailing(store, Actor("bench"), name=name, sender="bench@example.com",
                          subject="Hello {{ first_name }}", text_body=text_body, html_body=None,
                          recipients=recipients).mailing_id


def start_engines(db: Path, count: int, workers: int, transport: str, extra: list[str] | None = None) -> list[subprocess.Popen]:
    cmd = [str(Path(sys.executable).with_name("mailconsole")), "--db", str(db), "serve", "--quiet",
           "--workers", str(workers), "--transport", transport, *(extra or [])]
    return [subprocess.Popen(cmd, stdout=subprocess.DEVNULL) for _ in range(count)]


def stop_engines(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        p.wait(30)


def wait_sent(store: Store, mailing_id: int, n: int, timeout: float = 600.0) -> float:
    """Seconds until n messages of the mailing are recorded as sent or failed."""
    return sent_timings(store, mailing_id, n, timeout)[0]


def sent_timings(store: Store, mailing_id: int, n: int, timeout: float = 600.0) -> tuple[float, float]:
    """(seconds until all n are recorded, messages/s from the first recorded to the last).

    The second leaves out the engine processes' start-up (interpreter, imports,
    store open: about half a second here), which a short run would otherwise
    count as sending time.
    """
    t0 = time.perf_counter()
    first = None
    while time.perf_counter() - t0 < timeout:
        m = get_mailing(store, mailing_id)
        now = time.perf_counter()
        if first is None and m.sent + m.failed > 0:
            first = (now, m.sent + m.failed)
        if m.sent + m.failed >= n:
            assert first is not None
            # Over the messages recorded after the first poll that saw any.
            return now - t0, (n - first[1]) / max(now - first[0], 1e-9)
        time.sleep(0.02)
    raise TimeoutError(f"only {m.sent} of {n} sent after {timeout}s")


def env_with_src() -> dict[str, str]:
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parent.parent / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env
