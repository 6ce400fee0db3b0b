"""Two consoles on one store: a stop pressed in one shows in the other at its next poll."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from store_backend import store_at
from mailconsole.console.app import MailConsole
from mailconsole.store import Store, accounts

from .builder import OPERATOR, build
from .pilot import settle


def test_stop_in_one_console_shows_in_the_other(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    build(path).close()
    # Separate Store objects, as two processes would have; real clocks, real polling.
    first = MailConsole(Store(store_at(path)), actor=OPERATOR, poll_interval=0.25)
    second = MailConsole(Store(store_at(path)), actor=OPERATOR, poll_interval=0.25)

    async def main() -> None:
        async with first.run_test(size=(100, 30)) as one, second.run_test(size=(100, 30)) as two:
            await settle(one)
            await settle(two)
            assert not second.view().stopped
            await one.press("f2")
            pressed = time.monotonic()
            # A poll every 0.25 s shows it in well under a second; the bug, a console
            # that never polls, never shows it. 5 s is room for a loaded machine.
            while not second.view().stopped:
                assert time.monotonic() - pressed < 5.0, "the other console did not show the stop within 5 s"
                await asyncio.sleep(0.02)
            assert second.query_one("#banner").has_class("-stopped")
            assert accounts.state(second.store).stopped

    asyncio.run(main())
