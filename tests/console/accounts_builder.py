"""The fixed console store with two more accounts, built through the store's own functions.

default: the fixed store of builder.py (running, an engine, every status).
acme-eu: stopped by bob with a reason, one mailing queued.
globex: running, two mailings queued, one of them planned.
"""

from __future__ import annotations

from pathlib import Path

from mailconsole.store import Actor, Store
from mailconsole.store import accounts, importer

from .builder import FIXED, DAY, build

BOB = Actor("bob", "198.51.100.4")
ACME, GLOBEX = "acme-eu", "globex"


def _csv(path: Path, n: int, domain: str) -> Path:
    path.write_text("email,first_name\n" + "".join(f"u{i}@{domain},N{i}\n" for i in range(n)), encoding="utf-8")
    return path


def create(store: Store, tmp: Path, account: str, name: str, n: int, at: float | None = None) -> int:
    result = importer.create_mailing(
        store, BOB, account=account, name=name, sender=f"news@{account}.example",
        subject=f"{name} for {{{{ first_name }}}}", text_body="Hello {{ first_name }}\n", html_body=None,
        recipients=_csv(tmp / f"{account}-{name[:6]}.csv", n, f"{account}.example"), at=at,
    )
    return result.mailing_id


def build_accounts(path: Path, *, stopped: bool = False) -> Store:
    store = build(path, stopped=stopped)
    accounts.ensure_account(store, ACME)
    create(store, path.parent, ACME, "Acme autumn offer", 7)
    accounts.stop(store, BOB, ACME, reason="bounce storm")
    accounts.ensure_account(store, GLOBEX)
    create(store, path.parent, GLOBEX, "Globex welcome", 9)
    create(store, path.parent, GLOBEX, "Globex winter", 4, at=FIXED + 3 * DAY)
    return store
