"""Launch decisions: when the console starts an engine behind it, and when it must not."""

from __future__ import annotations

import argparse
import mailbox
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailconsole.cli.common import Context
from mailconsole.console import launch
from mailconsole.store import Store, engines

from .builder import FIXED


def _ctx(db: Path, **options: Any) -> Context:
    args = argparse.Namespace(db=str(db), account="default", no_engine=False, read_only=False, transport=None)
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
    Store(str(tmp_path / "s.db"), clock=lambda: FIXED).close()
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
