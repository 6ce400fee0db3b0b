"""`mailconsole resume`: per mailing what is sent now, suspended and held, with exact totals."""

from __future__ import annotations

import re
import time
from pathlib import Path

from console.builder import build_resume

import pytest
from store_backend import store_at

from mailconsole.store import Store, mailings


@pytest.fixture
def db(tmp_path: Path) -> str:
    """The builder's store (tests/console/builder.py), which the cli fixtures then run on."""
    return store_at(tmp_path / "store.db")


def _cells(out: str, name: str) -> list[str]:
    [line] = [ln for ln in out.splitlines() if name in ln]
    return re.findall(r"[\w,-]+", line.split(name, 1)[1])


def test_preview_and_resume_count_a_paused_mailing_as_held(cli, db: str, tmp_path: Path) -> None:
    build_resume(tmp_path / "store.db", now=time.time()).close()

    r = cli("resume", "--preview")
    assert r.code == 0, r.err
    assert "20 will be sent now, 6 suspended by the 7-day rule, 8 held" in r.out
    # status, revision, will be sent now, suspended, held
    assert _cells(r.out, "Spring sale") == ["sending", "2", "20", "0", "0"]
    assert _cells(r.out, "Old list") == ["sending", "1", "0", "6", "0"]
    assert _cells(r.out, "Autumn digest") == ["paused", "1", "0", "0", "8"]
    assert _cells(r.out, "total") == ["20", "6", "8"]

    r = cli("resume", "--yes")
    assert r.code == 0, r.err
    assert "RESUMED" in r.out and "20 will be sent now, 6 suspended by the 7-day rule, 8 held" in r.out
    paused = [m for m in mailings.list_mailings(Store(db), planned=True) if m.name == "Autumn digest"][0]
    assert (paused.status, paused.queued) == ("paused", 8)
