"""The naive sender the issue compares against: sqlite3 + EmailMessage + smtplib, one message at a time.

It uses the same store and templates as the engine, so the difference is the
engine's design, not the data: claim one row, render, build an EmailMessage,
send it over one reused smtplib connection, mark it sent, commit.
"""

from __future__ import annotations

import argparse
import json
import smtplib
import sqlite3
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

from common import make_store

from mailconsole import templating


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=2525)
    ap.add_argument("--work", default=None)
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="mc-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / "baseline.db"
    store, mid = make_store(db, args.n, work)
    store.close()
    conn = sqlite3.connect(db)
    subject_src, body_src, sender = conn.execute(
        "SELECT r.subject, r.text_body, m.sender FROM revisions r JOIN mailings m ON m.id = r.mailing_id WHERE m.id = ?", (mid,)
    ).fetchone()
    subject_t, body_t = templating.compile_text(subject_src), templating.compile_text(body_src)
    smtp = smtplib.SMTP(args.host, args.port)
    t0 = time.perf_counter()
    sent = 0
    while True:
        row = conn.execute("SELECT id, email, fields FROM messages WHERE state = 'queued' LIMIT 1").fetchone()
        if row is None:
            break
        mid_, rcpt, fields = row
        values = {**json.loads(fields), "email": rcpt}
        msg = EmailMessage()
        msg["From"] = sender
        msg["To"] = rcpt
        msg["Subject"] = subject_t.render(values)
        msg.set_content(body_t.render(values))
        smtp.send_message(msg)
        conn.execute("UPDATE messages SET state = 'sent', sent_at = ? WHERE id = ?", (time.time(), mid_))
        conn.commit()
        sent += 1
    seconds = time.perf_counter() - t0
    smtp.quit()
    print(json.dumps({"bench": "baseline", "n": sent, "seconds": round(seconds, 2), "rate": round(sent / seconds)}))


if __name__ == "__main__":
    main()
