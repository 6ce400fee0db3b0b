"""The one line at the top of every screen that says, in colour and words, what is happening."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from . import format as fmt
from .stopping import ERROR_PAUSE, StopProgress
from .view import LiveWidget, View


def requested_line(progress: StopProgress) -> Text:
    """A stop asked for but not saved: never STOPPED, and never silently RUNNING either."""
    text = Text("▲ STOP REQUESTED", style="bold")
    text.append(" — not yet applied (")
    text.append(fmt.plain(progress.why_not()))
    text.append(")")
    if progress.phase == "busy":
        text.append(", retrying")
    elif progress.phase == "failed":
        text.append(f", retrying every {ERROR_PAUSE:g}s; mail may still go out", style="bold")
    return text


def state_line(view: View) -> Text:
    snap = view.snapshot
    if view.stopped:
        text = Text("■ STOPPED", style="bold")
        acc = snap.overview.account if snap is not None and snap.stopped else None
        if acc is None:
            text.append(" — saved; nothing new is sent")
            return text
        text.append(f" since {fmt.short_time(acc.stopped_at)} ({fmt.ago(acc.stopped_at, view.now)})")
        text.append(" by ")
        text.append(fmt.plain(acc.stopped_by or "?"))
        if acc.reason:
            text.append(" — ")
            text.append(fmt.plain(acc.reason))
        return text
    if view.stop_requested is not None:
        return requested_line(view.stop_requested)
    text = Text("● RUNNING", style="bold")
    if snap is None:
        text.append(" — reading the store…")
        return text
    live = snap.overview.live_engines
    engines = len(live)
    if view.no_engine:
        text.append(" — no engine: nothing is being sent", style="bold")
        text.append(" (start `mailconsole serve`)")
        return text
    text.append(f" — mailings go out · {fmt.rate(view.rates.now)} msg/s · ")
    text.append(f"{engines} engine{'s' if engines != 1 else ''}")
    troubled = sum(1 for e in live if e.note)
    if troubled:
        # Visible from every tab: a mail server that cannot be reached stops the
        # sending as surely as the stop key, and only the Settings tab says why.
        text.append(f" · {troubled} cannot send (see Settings)", style="bold")
    return text


class StateBanner(Static, LiveWidget):
    """Green RUNNING, amber STOP REQUESTED, red STOPPED (or a stop failing); colours from the theme."""

    def show(self, view: View) -> None:
        requested = view.stop_requested
        self.set_class(view.stopped, "-stopped")
        self.set_class(view.no_engine and requested is None, "-no-engine")
        self.set_class(requested is not None and requested.phase != "failed", "-requested")
        self.set_class(requested is not None and requested.phase == "failed", "-failing")
        suffix = Text("  [read-only]" if view.read_only else "")
        self.update(Text.assemble(state_line(view), suffix))
