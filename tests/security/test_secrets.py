"""The SMTP password never shows: not in output, logs, the audit log or the store's files.

A real `mailconsole serve` (INFO logging, so it says everything it would say)
sends through an aiosmtpd server that requires AUTH; the password comes once from
$MAILCONSOLE_SMTP_PASSWORD and once inside the transport URL. Then every
reading command runs, and everything any process printed, plus the bytes of the
store, its -wal and -shm, is searched for the password in plain and in the
encodings AUTH puts it on the wire (base64 of PLAIN and LOGIN).
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.conftest import accept_login, smtpd_factory  # noqa: F401  (fixture)
from mailconsole.store import Store, mailings
from mailconsole.store.importer import create_mailing

from .conftest import MALLORY, SENDER, write_csv

# AUTH without TLS keeps the test server simple; the warning says what we know.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

MAILCONSOLE = str(Path(sys.executable).with_name("mailconsole"))
USER = "mailer"
PASSWORD = "pw-Zq8!x7vR"


def forms(password: str) -> list[bytes]:
    """The password as it could leak: plain, URL-encoded, and as AUTH PLAIN/LOGIN send it."""
    raw = password.encode()
    return [raw, password.replace("!", "%21").encode(), base64.b64encode(raw),
            base64.b64encode(b"\0" + USER.encode() + b"\0" + raw)]


def cli(db: Path, *args: str, env: dict[str, str]) -> str:
    r = subprocess.run([MAILCONSOLE, "--db", str(db), *args], capture_output=True, text=True, timeout=60, env=env)
    return r.stdout + r.stderr


@pytest.mark.parametrize("where", ["environment", "url"])
@pytest.mark.parametrize("accepted", [True, False], ids=["right-password", "wrong-password"])
def test_the_password_appears_nowhere(tmp_path: Path, smtpd_factory, where: str, accepted: bool) -> None:  # type: ignore[no-untyped-def]
    # With the wrong password the server refuses AUTH: error messages are where secrets usually leak.
    ctl, handler = smtpd_factory(authenticator=accept_login(USER, PASSWORD if accepted else "other"),
                                 auth_required=True, auth_require_tls=False)
    db = tmp_path / "store.db"
    store = Store(str(db))
    mid = 0
    try:
        mid = create_mailing(
            store, MALLORY, name="secret test", sender=SENDER, subject="Hi {{ name }}", text_body="x {{ name }}\n",
            html_body=None, recipients=write_csv(tmp_path / "r.csv", [{"email": "a@example.net", "name": "A"}]),
        ).mailing_id
    finally:
        store.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILCONSOLE_")}
    if where == "environment":
        transport = f"smtp://{USER}@127.0.0.1:{ctl.port}?starttls=off"
        env["MAILCONSOLE_SMTP_PASSWORD"] = PASSWORD
    else:
        transport = f"smtp://{USER}:{PASSWORD.replace('!', '%21')}@127.0.0.1:{ctl.port}?starttls=off"
    config = tmp_path / "engine.toml"
    config.write_text("[engine]\nworkers = 1\nidle_claim_interval = 0.02\nretry_base = 0.05\nretry_max = 0.1\n"
                      "max_attempts = 2\nheartbeat_interval = 0.2\nshutdown_grace = 2.0\ncommand_timeout = 1.0\n")
    engine = subprocess.Popen([MAILCONSOLE, "--db", str(db), "serve", "--transport", transport, "--config", str(config)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    outputs = []
    try:
        deadline = time.time() + 30
        while True:
            store = Store(str(db))
            try:
                m = mailings.get_mailing(store, mid)
            finally:
                store.close()
            # A refused login fails nothing: the engine keeps the message and tries the
            # server again with a growing back-off; three seconds of that is checked
            # (the refusal in its log, its heartbeat note, `status`).
            if m.sent + m.failed == 1 or (not accepted and time.time() > deadline - 27):
                break
            assert time.time() < deadline and engine.poll() is None, "engine did not finish the message"
            time.sleep(0.1)
        for args in (["status"], ["status", "--json"], ["mailings", "--json"], ["audit"], ["audit", "--json"]):
            outputs.append(cli(db, *args, env=env))
    finally:
        engine.send_signal(signal.SIGTERM)
        out, err = engine.communicate(timeout=30)
    outputs += [out, err]
    assert (m.sent, len(handler.messages)) == ((1, 1) if accepted else (0, 0)), err
    if where == "url":
        assert f"{USER}:***@" in "".join(outputs)  # the engine's transport is shown, masked
    if not accepted:
        # The failed login is logged and shown by `status` (without the password, checked below).
        assert "cannot use the mail server: AUTH" in err and "535" in err, err
        assert "535" in outputs[0], outputs[0]
        assert m.failed == 0  # kept for when the login works again
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("store.db*"))
    text = "\n".join(outputs).encode()
    for leaked in forms(PASSWORD):
        assert leaked not in stored, leaked
        assert leaked not in text, leaked
