"""Overshoot through the relay: what a real Postfix delivers after `mailconsole stop` returns.

A private Postfix (tests/relay/postfix.py: its own configuration on loopback,
delivery concurrency 10) relays to a recording next hop that takes ~20 ms per
message, so the relay's queue fills while the engine hands it messages at full
rate. Each run: a fresh mailing, wait until the relay queues --queued messages,
run `mailconsole stop` as its own process, count what the next hop receives
after the command returned. "before": no relay agent (the relay delivers all it
queued); "after": `mailconsole relay-agent --postfix` beside it, with its
acknowledgement latency: the stop's commit (accounts.stopped_at) -> the time the
agent acknowledged the new generation (it often does before the stop command has
even returned); "bounded": the agent, and the engine run with `serve
--relay-backlog --backlog`, so the relay never queues more than that. Between runs the mailing is deleted (with
the agent: removed from the relay too) and the account resumed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "relay"))

from postfix import CONCURRENCY, NextHop, NextHopServer, PrivatePostfix, unavailable  # noqa: E402

from mailconsole.store import Actor, Store, accounts, relays  # noqa: E402
from mailconsole.store.importer import create_mailing  # noqa: E402
from mailconsole.store.mailings import delete_mailing  # noqa: E402

BENCH = Actor("bench")
MAILCONSOLE = str(Path(sys.executable).with_name("mailconsole"))
ENGINE = "[engine]\nworkers = 8\nbatch = 50\nidle_claim_interval = 0.02\nheartbeat_interval = 0.2\n"


def mailing(store: Store, work: Path, n: int, run: str) -> int:
    path = work / f"r-{run}.csv"
    path.write_text("email,name\n" + "".join(f"r{run}-{i}@example.net,User {i}\n" for i in range(n)))
    return create_mailing(store, BENCH, name=f"run {run}", sender="news@shop.example", subject="Hello {{ name }}",
                          text_body="Dear {{ name }}\n" + "Lorem ipsum dolor sit amet.\n" * 60, html_body=None,
                          recipients=path).mailing_id


def wait(predicate, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def acked(store: Store, generation: int) -> bool:
    acc = accounts.state(store).id
    return any(r.alive and r.acknowledged.get(acc) is not None and r.acknowledged[acc].generation >= generation
               for r in relays.list_relays(store))


def one_run(store: Store, db: Path, relay: PrivatePostfix, hop: NextHop, work: Path, run: str, args: argparse.Namespace,
            with_agent: bool, queued: int) -> dict:
    mid = mailing(store, work, args.n, run)
    if not wait(lambda: relay.queue_size() >= queued, 120):
        # The engine did not outpace the relay (a busy machine): no stop to measure. Counted as
        # skipped; the mailing goes, and the runs go on.
        delete_mailing(store, BENCH, mid)
        wait(lambda: relay.queue_size() == 0, 120)
        return {"run": run, "agent": with_agent, "skipped": f"the relay never queued {queued} (at most "
                f"{relay.queue_size()} left as the mailing was sent)"}
    at_relay = relay.queue_size()
    subprocess.run([MAILCONSOLE, "--db", str(db), "stop", "--reason", "bench"], check=True, capture_output=True)
    returned = time.time()
    generation = accounts.state(store).generation
    ack = None
    if with_agent:
        if wait(lambda: acked(store, generation), 10):
            state = accounts.state(store)
            row = next(r for r in relays.list_relays(store) if r.alive)
            ack = row.acknowledged[state.id].at - (state.stopped_at or 0.0)  # after the stop's commit
        time.sleep(args.settle)
    else:
        wait(lambda: relay.queue_size() == 0, 120)  # everything it queued goes out
        time.sleep(0.5)
    after = len(hop.recipients(after=returned, ending="@example.net"))
    committed = accounts.state(store).stopped_at or returned
    held_at = last_held(store, mid)  # when the last hold was recorded: the rest of ack_s is the engines' in-flight
    after_commit = len(hop.recipients(after=committed, ending="@example.net"))
    delete_mailing(store, BENCH, mid)
    accounts.resume(store, BENCH)
    if with_agent:
        # The agent removes the deleted mailing's held messages; what the relay finished
        # while held stays as a done file in hold (recorded delivered): cleared after.
        wait(lambda: not relays.to_act_on(store, relay.relay, []) and relays.held_per_account(store, relay.relay) == {}, 60)
        wait(lambda: all(m["queue_name"] == "hold" for m in relay.queue()), 60)
        relay.command("postsuper", "-d", "ALL", "hold")
    else:
        wait(lambda: relay.queue_size() == 0, 60)
    return {"run": run, "agent": with_agent, "at_relay_at_stop": at_relay, "delivered_after_stop": after,
            "delivered_after_commit": after_commit, "stop_returned_after_commit_s": returned - committed, "ack_s": ack,
            "last_hold_recorded_s": held_at - committed if held_at else None}


def last_held(store: Store, mailing_id: int) -> float | None:
    """The latest relay_at of the mailing's messages held at the relay: when the last hold was recorded."""
    from sqlalchemy import func, select

    from mailconsole.store.schema import messages

    with store.read() as conn:
        return conn.execute(select(func.max(messages.c.relay_at)).where(
            messages.c.mailing_id == mailing_id, messages.c.relay_state == "held")).scalar()


def summary(rows: list[dict], label: str) -> dict:
    skipped = sum(1 for r in rows if "skipped" in r)
    rows = [r for r in rows if "skipped" not in r]
    if not rows:
        return {"mode": label, "runs": 0, "skipped": skipped}
    after = [r["delivered_after_stop"] for r in rows]
    out = {"mode": label, "runs": len(rows), "skipped": skipped, "delivered_after_median": statistics.median(after),
           "delivered_after_max": max(after), "at_relay_median": statistics.median(r["at_relay_at_stop"] for r in rows),
           "within_concurrency": sum(1 for a in after if a <= CONCURRENCY),
           "after_commit_median": statistics.median(r["delivered_after_commit"] for r in rows),
           "after_commit_max": max(r["delivered_after_commit"] for r in rows),
           "stop_returned_after_commit_median_ms": round(1000 * statistics.median(r["stop_returned_after_commit_s"] for r in rows))}
    holds = [r["last_hold_recorded_s"] for r in rows if r.get("last_hold_recorded_s") is not None]
    if holds:
        out |= {"last_hold_recorded_median_ms": round(1000 * statistics.median(holds)),
                "last_hold_recorded_max_ms": round(1000 * max(holds))}
    acks = [r["ack_s"] for r in rows if r["ack_s"] is not None]
    if acks:
        out |= {"ack_median_ms": round(1000 * statistics.median(acks), 1), "ack_max_ms": round(1000 * max(acks), 1),
                "acked_runs": len(acks)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20, help="stops with the agent")
    ap.add_argument("--before-runs", type=int, default=5,
                    help="stops without it (each waits for the relay to deliver all it queued)")
    ap.add_argument("--n", type=int, default=4000, help="recipients per run")
    ap.add_argument("--queued", type=int, default=1500, help="messages queued at the relay when the stop is pressed")
    ap.add_argument("--delay", type=float, default=0.02, help="seconds the next hop takes per message")
    ap.add_argument("--settle", type=float, default=3.0, help="seconds counted after the stop (with the agent)")
    ap.add_argument("--modes", default="before,after,bounded",
                    help="before: no agent; after: the agent; bounded: the agent and serve --relay-backlog")
    ap.add_argument("--backlog", type=int, default=100, help="--relay-backlog of the bounded mode")
    ap.add_argument("--agent-log", help="append the agent's log (JSON lines, INFO) to this file: its rounds' timings")
    args = ap.parse_args()
    why = unavailable()
    if why:
        raise SystemExit(f"relay_overshoot: {why}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up the relay and the engine
    work = Path(tempfile.mkdtemp(prefix="mc-relay-bench-"))
    hop = NextHop(delay=args.delay)
    server = NextHopServer(hop)
    server.start()
    relay = PrivatePostfix(work / "postfix", server.port)
    relay.start()
    db = work / "bench.db"
    store = Store(str(db))
    (work / "engine.toml").write_text(ENGINE)
    def start_engine(*extra: str) -> subprocess.Popen:
        return subprocess.Popen([MAILCONSOLE, "--db", str(db), "serve", "--quiet", "--transport",
                                 f"smtp://{relay.relay}?starttls=off", "--config", str(work / "engine.toml"), *extra])

    engine = start_engine()
    bounded = False  # whether the engine runs with --relay-backlog
    results: dict[str, list[dict]] = {}
    agent = None
    try:
        for mode in args.modes.split(","):
            agent = None
            if (mode == "bounded") != bounded:  # serve --relay-backlog: the relay never queues more than that
                engine.terminate()
                engine.wait(30)
                bounded = mode == "bounded"
                engine = start_engine(*(["--relay-backlog", str(args.backlog)] if bounded else []))
            if mode in ("after", "bounded"):
                log_to = open(args.agent_log, "a") if args.agent_log else None  # noqa: SIM115 (the agent's life)
                agent = subprocess.Popen([MAILCONSOLE, "--db", str(db), "relay-agent",
                                          *(["--log-format", "json"] if log_to else ["--quiet"]), "--postfix",
                                          "--postfix-config", str(relay.config), "--relay", relay.relay],
                                         stderr=log_to)
                wait(lambda: any(r.alive for r in relays.list_relays(store)), 30)
            rows = []
            for i in range(args.before_runs if mode == "before" else args.runs):
                row = one_run(store, db, relay, hop, work, f"{mode}{i}", args, mode != "before",
                              args.queued if mode != "bounded" else int(args.backlog * 0.8))
                print(json.dumps(row), flush=True)
                rows.append(row)
            results[mode] = rows
            skipped = [r for r in rows if "skipped" in r]
            if skipped:
                print(f"{mode}: {len(skipped)} of {len(rows)} runs skipped: the relay never queued what they waited for",
                      flush=True)
            if agent is not None:
                agent.terminate()
                agent.wait(15)
        out = Path(__file__).parent / "results" / f"relay-overshoot-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.jsonl"
        os.makedirs(out.parent, exist_ok=True)
        with out.open("w") as f:
            for mode, rows in results.items():
                for row in rows:
                    f.write(json.dumps(row) + "\n")
                line = json.dumps(summary(rows, mode))
                f.write(line + "\n")
                print(line, flush=True)
    finally:
        if agent is not None and agent.poll() is None:
            agent.terminate()
            agent.wait(15)
        engine.terminate()
        engine.wait(30)
        relay.cleanup()
        server.stop()
        store.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
