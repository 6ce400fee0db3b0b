"""Commands on a PostgreSQL store: the password never appears, libpq options pass through."""

from __future__ import annotations

import subprocess
import sys

from sqlalchemy.engine import make_url


def _mc(db: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mailconsole", "--db", db, *args], capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL, env=env)


def test_the_password_in_the_url_is_masked_and_libpq_options_pass_through(pg_url, monkeypatch) -> None:
    import os

    password = os.environ["PGPASSWORD"]
    url = make_url(pg_url).set(password=password).update_query_dict(
        {"sslmode": "disable", "application_name": "ops-console"}).render_as_string(hide_password=False)
    env = {k: v for k, v in os.environ.items() if k not in ("PGPASSWORD", "PGPASSFILE")}
    outputs = []
    for args in (("init",), ("status",), ("status", "--json"), ("stop", "--json"), ("audit",),
                 ("resume", "--yes")):
        r = _mc(url, *args, env=env)
        assert r.returncode == 0, (args, r.stderr)
        outputs.append(r.stdout + r.stderr)
    assert all(password not in out for out in outputs)
    assert "***" in outputs[0] and "sslmode=disable" in outputs[0]
    # sslmode=require reaches libpq: the test server speaks no TLS, so the connection is refused, in one line.
    r = _mc(url.replace("sslmode=disable", "sslmode=require"), "status", env=env)
    assert r.returncode != 0 and password not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
