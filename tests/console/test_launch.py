"""Launch decisions: when the console starts an engine behind it, and when it must not."""

from __future__ import annotations

import argparse
import mailbox
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from store_backend import store_at
from mailconsole.cli.common import Context
from mailconsole.console import launch
from mailconsole.store import NotFound, Store, StoreError, engines

from .builder import FIXED

MAILCONSOLE = str(Path(sys.executable).with_name("mailconsole"))


def _ctx(db: Path, **options: Any) -> Context:
    """The console's context on the store at `db`, made first if missing (the console never makes one)."""
    Store(store_at(db), clock=lambda: FIXED).close()
    args = argparse.Namespace(db=store_at(db), account="default", no_engine=False, read_only=False, transport=None)
    for key, value in options.items():
        setattr(args, key, value)
    return Context(args)


@pytest.fixture
def ran(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Capture what launch() would run instead of opening a terminal UI; stop any engine it started."""
    seen: dict[str, Any] = {}

    def fake_run(store: Store, account: str = "default", **kwargs: Any) -> int:
        seen.update(kwargs, store=store)
        if kwargs.get("engine") is not None:
            kwargs["engine"].stop(timeout=10)
        return 0

    monkeypatch.setattr(launch, "run_console", fake_run)
    monkeypatch.delenv("MAILCONSOLE_TRANSPORT", raising=False)
    interval = sys.getswitchinterval()
    yield seen
    sys.setswitchinterval(interval)  # start_engine tunes it process-wide; other tests time things


def _maildir_ctx(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A console context whose engine would deliver into a fresh Maildir."""
    box = tmp_path / "Maildir"
    mailbox.Maildir(box, create=True)
    return _ctx(tmp_path / "s.db", transport=f"maildir:{box}")


def test_no_transport_configured_starts_no_engine(tmp_path: Path, ran: dict[str, Any]) -> None:
    ctx = _ctx(tmp_path / "s.db")
    assert launch.launch(ctx) == 0
    assert ran["engine"] is None and "no transport configured" in ran["notice"]
    ctx.close()


def test_transport_given_starts_an_engine_behind_the_console(tmp_path: Path, ran: dict[str, Any]) -> None:
    ctx = _maildir_ctx(tmp_path)
    launch.launch(ctx)
    assert ran["engine"] is not None and ran["notice"] is None
    ctx.close()


def test_a_live_engine_elsewhere_is_only_observed(tmp_path: Path, ran: dict[str, Any]) -> None:
    ctx = _ctx(tmp_path / "s.db", transport="null:")
    store = ctx.store()
    engines.beat(store, "elsewhere:1", host="other", pid=1, workers=8, transport="null:",
                 started_at=store.now(), state="running")
    launch.launch(ctx)
    assert ran["engine"] is None and "already sending" in ran["notice"]
    ctx.close()


@pytest.mark.parametrize("option", ["no_engine", "read_only"])
def test_no_engine_and_read_only(tmp_path: Path, ran: dict[str, Any], option: str) -> None:
    Store(store_at(tmp_path / "s.db"), clock=lambda: FIXED).close()
    ctx = _ctx(tmp_path / "s.db", transport="null:", **{option: True})
    launch.launch(ctx)
    assert ran["engine"] is None
    assert ran["read_only"] is (option == "read_only")
    ctx.close()


def test_the_default_engine_mode_starts_with_the_console(tmp_path: Path, ran: dict[str, Any]) -> None:
    """A guest engine needs the console's loop: launch leaves starting (and stopping) it to the app."""
    ctx = _maildir_ctx(tmp_path)
    launch.launch(ctx)
    engine = ran["engine"]
    assert engine.mode == launch.ENGINE_MODE
    if engine.on_host_loop:
        assert not engine.started and engines.list_engines(ctx.store()) == []
    else:
        assert engine.started
    ctx.close()


def test_a_missing_store_is_refused_not_created(tmp_path: Path, ran: dict[str, Any]) -> None:
    """A mistyped --db once opened a new empty store that looked RUNNING."""
    missing = tmp_path / "typo" / "mailconsle.db"
    args = argparse.Namespace(db=str(missing), account="default", no_engine=False, read_only=False, transport=None)
    with pytest.raises(StoreError, match="no store at .*mailconsole init.*mailconsole demo"):
        launch.launch(Context(args))
    assert not missing.exists() and not missing.parent.exists() and "store" not in ran


def test_an_unknown_account_is_refused(tmp_path: Path, ran: dict[str, Any]) -> None:
    with pytest.raises(NotFound, match="no account named 'defualt'"):
        launch.launch(_ctx(tmp_path / "s.db", account="defualt"))
    assert "store" not in ran


@pytest.mark.parametrize("command", [[], ["console"], ["console", "--read-only"]])
def test_the_cli_refuses_a_missing_store_in_one_line(tmp_path: Path, command: list[str]) -> None:
    missing = tmp_path / "nope.db"
    done = subprocess.run([MAILCONSOLE, "--db", str(missing), *command],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 1, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "mailconsole init" in lines[0] and "mailconsole demo" in lines[0], done.stderr
    assert str(missing) in lines[0] and "Traceback" not in done.stderr
    assert not missing.exists()
