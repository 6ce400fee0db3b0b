"""A relay scenario: a real store, `mailconsole serve` sending to the private Postfix, the agent."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func, select

from mailconsole.store import Actor, Store
from mailconsole.store import relays
from mailconsole.store.importer import create_mailing
from mailconsole.store.schema import messages

from postfix import PrivatePostfix

MAILCONSOLE = str(Path(sys.executable).with_name("mailconsole"))
OPERATOR = Actor("operator", "192.0.2.1")
ENGINE_CONFIG = """\
[engine]
workers = 8
batch = 50
idle_claim_interval = 0.02
heartbeat_interval = 0.2
maintenance_interval = 0.2
result_flush = 0.002
"""


def wait(predicate: Callable[[], object], timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def add_mailing(store: Store, directory: Path, n: int, *, prefix: str = "user", name: str = "news") -> int:
    path = directory / f"{prefix}-{time.monotonic_ns()}.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["email", "name"])
        for i in range(n):
            w.writerow([f"{prefix}{i}@example.net", f"User {i}"])
    return create_mailing(store, OPERATOR, name=name, sender="news@shop.example", subject="Hello {{ name }}",
                          text_body="Dear {{ name }}\n", html_body=None,
                          recipients=path).mailing_id


class Process:
    """A mailconsole command running in the background; its output in a log file."""

    def __init__(self, logs: Path, name: str, *args: str) -> None:
        self.log_path = logs / f"{name}-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen([MAILCONSOLE, *args], stdout=self._log, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


class InProcessAgent:
    def __init__(self, store: Store, relay: PrivatePostfix, **options: object) -> None:
        from mailconsole.relay.agent import Agent
        from mailconsole.relay.postfix import PostfixQueue

        self.store = store
        self.queue = PostfixQueue(str(relay.config))
        self.agent = Agent(store, self.queue, relay=relay.relay, **options)  # type: ignore[arg-type]
        self.thread = threading.Thread(target=self.agent.run, daemon=True)
        self.thread.start()
        self.log_path = Path("in-process")

    def note(self) -> str:
        return self.agent.note or ""

    def stop(self) -> None:
        self.agent.stopping.set()
        self.thread.join(15)
        self.queue.close()
        self.store.close()


class Scenario:
    def __init__(self, tmp: Path, relay: PrivatePostfix) -> None:
        self.tmp = tmp
        self.db = tmp / "store.db"
        self.relay = relay
        self.store = Store(str(self.db))
        (tmp / "engine.toml").write_text(ENGINE_CONFIG)
        self.processes: list[Process] = []

    def engine(self, *extra: str) -> Process:
        p = Process(self.tmp, "engine", "--db", str(self.db), "serve", "--quiet", "--transport",
                    f"smtp://{self.relay.relay}?starttls=off", "--config", str(self.tmp / "engine.toml"), *extra)
        self.processes.append(p)
        return p

    def agent(self) -> Process:
        p = Process(self.tmp, "agent", "--db", str(self.db), "relay-agent", "--postfix", "--postfix-config",
                    str(self.relay.config), "--relay", self.relay.relay)
        self.processes.append(p)
        wait(lambda: any(r.alive and r.pid == p.proc.pid for r in relays.list_relays(self.store)), 30, "the agent's heartbeat")
        return p

    def agent_in_process(self, **options: object) -> "InProcessAgent":
        """The agent on a thread of the test (its knobs within reach), on its own store connection."""
        a = InProcessAgent(Store(str(self.db)), self.relay, **options)
        self.processes.append(a)  # type: ignore[arg-type]
        return a

    def relay_states(self, mailing_id: int | None = None) -> dict[str | None, int]:
        query = select(messages.c.relay_state, func.count()).group_by(messages.c.relay_state)
        if mailing_id is not None:
            query = query.where(messages.c.mailing_id == mailing_id)
        with self.store.read() as conn:
            return {s: n for s, n in conn.execute(query)}

    def held_ids(self, mailing_id: int | None = None) -> set[str]:
        return self.ids_in_state("held", mailing_id)

    def ids_in_state(self, state: str, mailing_id: int | None = None) -> set[str]:
        query = select(messages.c.relay_queue_id).where(messages.c.relay_state == state)
        if mailing_id is not None:
            query = query.where(messages.c.mailing_id == mailing_id)
        with self.store.read() as conn:
            return set(conn.execute(query).scalars())

    def agent_row(self) -> relays.RelayInfo:
        """The row of the agent started last."""
        agent = [p for p in self.processes if "agent" in p.log_path.name][-1]
        for r in relays.list_relays(self.store):
            if r.pid == agent.proc.pid:  # type: ignore[union-attr]
                return r
        raise AssertionError(f"the agent has no live row; its log:\n{agent.log()[-3000:]}")

    def close(self) -> None:
        for p in self.processes:
            p.stop()
        self.store.close()
