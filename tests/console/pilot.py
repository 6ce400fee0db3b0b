"""Helpers for Pilot tests: run an app headless from a sync test, wait for its workers."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Awaitable, Callable

from rich.console import Console
from textual.pilot import Pilot

from mailconsole.console.app import WAKEUPS, MailConsole


def drive(app: MailConsole, script: Callable[[Pilot], Awaitable[None]], size: tuple[int, int] = (100, 30)) -> None:
    """Run `script` against `app` (sync wrapper: the suite's async mode is trio's, Textual's is asyncio)."""

    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            await script(pilot)

    asyncio.run(main())


async def settle(pilot: Pilot) -> None:
    """Let worker threads (and a stop being committed) finish and their results reach the screen."""
    request = getattr(pilot.app, "stop_request", None)
    deadline = time.monotonic() + 10
    while request is not None and request.is_alive() and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    for _ in range(3):
        # Not the listener for the store's wake-ups: it runs as long as the app does.
        finite = [w for w in pilot.app.workers if w.group != WAKEUPS]
        if finite:
            await pilot.app.workers.wait_for_complete(finite)
        await pilot.pause()


async def press(pilot: Pilot, *keys: str) -> None:
    for key in keys:
        await pilot.press(key)
        await settle(pilot)


def screen_text(app: MailConsole) -> str:
    """The screen as the terminal would be told to draw it (every screen on top), without styles."""
    console = Console(width=app.size.width, height=app.size.height, file=io.StringIO(), force_terminal=True,
                      color_system="truecolor", record=True, legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text(styles=False)


def keys_pressed(*keys: str) -> Callable[[Pilot], Awaitable[None]]:
    """A snapshot's `run_before`: press `keys` one by one as an operator would, each result settled.

    Then every text cursor stops blinking (shown, steady): the picture must not
    depend on when, in the blink, it is taken.
    """

    async def run(pilot: Pilot) -> None:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)
        await still_cursors(pilot)

    return run


async def still_cursors(pilot: Pilot) -> None:
    """Every text cursor on the screen shown and steady, so that a snapshot does not catch it mid-blink."""
    for field in pilot.app.screen.query("Input, TextArea"):
        field.cursor_blink = False  # type: ignore[attr-defined]
    await settle(pilot)
