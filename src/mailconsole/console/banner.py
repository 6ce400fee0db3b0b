"""The one line at the top of every screen that says, in colour and words, what is happening."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from . import format as fmt
from .view import LiveWidget, View


def state_line(view: View) -> Text:
    snap = view.snapshot
    if view.stopped:
        text = Text("■ STOPPED", style="bold")
        acc = snap.overview.account if snap is not None and snap.stopped else None
        if acc is None:
            text.append(" — stopping now, nothing new is sent")
            return text
        text.append(f" since {fmt.short_time(acc.stopped_at)} ({fmt.ago(acc.stopped_at, view.now)})")
        text.append(" by ")
        text.append(fmt.plain(acc.stopped_by or "?"))
        if acc.reason:
            text.append(" — ")
            text.append(fmt.plain(acc.reason))
        return text
    text = Text("● RUNNING", style="bold")
    if snap is None:
        text.append(" — reading the store…")
        return text
    live = snap.overview.live_engines
    engines = len(live)
    text.append(f" — mailings go out · {fmt.rate(view.rates.now)} msg/s · ")
    text.append("no engine is sending" if engines == 0 else f"{engines} engine{'s' if engines != 1 else ''}")
    troubled = sum(1 for e in live if e.note)
    if troubled:
        # Visible from every tab: a mail server that cannot be reached stops the
        # sending as surely as the stop key, and only the Settings tab says why.
        text.append(f" · {troubled} cannot send (see Settings)", style="bold")
    return text


class StateBanner(Static, LiveWidget):
    """Green RUNNING or red STOPPED; the colours come from the theme."""

    def show(self, view: View) -> None:
        self.set_class(view.stopped, "-stopped")
        suffix = Text("  [read-only]" if view.read_only else "")
        self.update(Text.assemble(state_line(view), suffix))
