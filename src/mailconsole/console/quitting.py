"""Quitting a console that hosts the engine: sending stops with it, so it asks first.

Quitting used to end the engine inside the console without a word, and the
queue then sat still while `status` still said RUNNING. The question is asked
only when quitting really stops delivery: the account runs, something is
queued, and no other live engine would send it. A stopped account sends
nothing either way, so it quits at once; so does an SSH drop (SIGHUP), which
never reaches this.
"""

from __future__ import annotations

from rich.text import Text

from . import format as fmt
from .view import View

QUIT_TITLE = "Quit? Sending stops with this console"


def quit_question(view: View, engine_id: str | None) -> Text | None:
    """What to ask before quitting, or None to quit at once.

    `engine_id`: the engine running inside this console, None if there is none (or it ended).
    """
    snap = view.snapshot
    if engine_id is None or snap is None or view.stopped:
        return None
    ov = snap.overview
    waiting = ov.queue["queued"] + ov.queue["in_flight"]
    others = [e for e in ov.live_engines if e.id != engine_id]
    if not waiting or others:
        return None
    text = Text("The engine inside this console stops with it: ")
    text.append(f"{fmt.count(waiting)} queued messages stay queued", style="bold")
    text.append(" and nothing is sent until a console or `mailconsole serve` runs.\n\n")
    text.append("To keep sending without a console, start `mailconsole serve` (in tmux or as a service) "
                "first; then quitting here stops nothing.")
    return text
