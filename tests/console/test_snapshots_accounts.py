"""Snapshots of the account picker and the command line, at two sizes, on a store with three accounts."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailconsole.console.app import MailConsole
from mailconsole.store import Store

from .accounts_builder import build_accounts
from .builder import FIXED, OPERATOR
from .conftest import HOST, STORE_LABEL
from .pilot import keys_pressed

SIZES = [(80, 24), (120, 36)]


def _app(tmp_path: Path) -> MailConsole:
    store: Store = build_accounts(tmp_path / "store.db")
    return MailConsole(store, clock=lambda: FIXED, actor=OPERATOR, poll_interval=None, host=HOST,
                       store_label=STORE_LABEL)



class TestPicker:
    @pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
    def test_picker(self, snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
        """Every account in words (RUNNING / STOPPED, since and by whom), its queue; the current one marked."""
        assert snap_compare(_app(tmp_path), run_before=keys_pressed("ctrl+a"), terminal_size=size)

    @pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
    def test_switched(self, snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
        """After enter on acme-eu: the header names it, and the state and tables are its own (stopped)."""
        assert snap_compare(_app(tmp_path), run_before=keys_pressed("ctrl+a", "up", "enter", "2"), terminal_size=size)


class TestCommandLine:
    @pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
    def test_unknown_account(self, snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
        """`:account nobody` says there is no such account, and which there are; nothing changes."""
        keys = ["colon", *"account nobody", "enter"]
        assert snap_compare(_app(tmp_path), run_before=keys_pressed(*keys), terminal_size=size)
