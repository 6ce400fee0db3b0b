"""Settings/Other: the emergency control, the drain after a stop, and every engine."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Static

from ..store.status import hidden_engines_note
from . import format as fmt
from .policy_settings import PolicyPanel
from .tables import LiveTable
from .view import LiveWidget, View

ENGINE_COLUMNS = (
    ("host", "Host", None),
    ("pid", "PID", None),
    ("workers", "Workers", None),
    ("in_flight", "In flight", None),
    ("rate", "Msg/s", None),
    ("ack", "Stop honoured", None),
    ("transport", "Transport", None),
    ("beat", "Heartbeat", None),
)


def drain_line(view: View) -> Text:
    """After a stop: "in flight 37 → 0, 3/3 engines stopped"."""
    snap = view.snapshot
    if snap is None or not view.stopped:
        return Text("")
    ov = snap.overview
    engines = len(ov.live_engines)
    if engines == 0:
        return Text("No engine is running: nothing can be sent.", style="bold")
    start = view.drain_from if view.drain_from is not None else ov.in_flight
    acked = ov.acknowledged if snap.stopped else 0
    relays = len(ov.live_relays)
    holding = ov.relays_acknowledged if snap.stopped else 0
    done = acked == engines and ov.in_flight == 0 and holding == relays
    text = Text(f"in flight {fmt.count(start)} → {fmt.count(ov.in_flight)}, {acked}/{engines} engines stopped")
    if relays:
        text.append(f", {holding}/{relays} relays holding")
    text.append("  ✔ quiescent: nothing more will go out" if done else "  … draining", style="bold")
    return text


def stop_facts(view: View) -> Text:
    """Since when, by whom, from where and why: the questions asked first in an incident."""
    snap = view.snapshot
    if snap is None:
        return Text("reading the store…")
    acc = snap.overview.account
    if view.stopped and not acc.stopped:
        return Text("Stop saved in the store; reading it back…")
    requested = view.stop_requested
    if requested is not None:
        text = Text("The stop is not saved yet: ", style="bold")
        text.append(fmt.plain(requested.why_not()))
        if requested.attempts:
            text.append(f" (attempt {requested.attempts}).")
        text.append("\nIt is being retried by itself, without limit; no need to press again.")
        text.append("\nUntil it is saved, messages can still go out.", style="bold")
        return text
    if acc.stopped:
        text = Text(f"since {fmt.clock_time(acc.stopped_at)} ({fmt.ago(acc.stopped_at, view.now)}) by ")
        text.append(fmt.plain(acc.stopped_by or "?"))
        if acc.stopped_from:
            text.append(" from ")
            text.append(fmt.plain(acc.stopped_from))
        text.append("\nreason: ")
        text.append(fmt.plain(acc.reason or "none given"))
        text.append("\nNothing is sent until you resume (R); the queue is kept.")
        return text
    if view.no_engine:
        text = Text("No engine is running: nothing is being sent. ", style="bold")
        text.append("Queued mail waits until a console with its engine or `mailconsole serve` runs. "
                    "F2 or ! still stops the account.")
        return text
    text = Text("Mailings of this account go out. Press F2 or ! to stop them all, at once.")
    if acc.resumed_at:
        text.append(f"\nlast resumed {fmt.clock_time(acc.resumed_at)} by ")
        text.append(fmt.plain(acc.resumed_by or "?"))
    return text


class EmergencyPanel(Vertical, LiveWidget):
    """The state, big; who stopped and why; the stop and resume buttons."""

    def compose(self) -> ComposeResult:
        yield Static(id="state-word")
        yield Static(id="state-detail")
        with Horizontal(id="emergency-buttons"):
            yield Button("STOP ALL  (F2 / !)", id="stop-button", variant="error", compact=True)
            yield Button("Resume…  (R)", id="resume-button", variant="success", compact=True)
        yield Static(id="drain")

    def show(self, view: View) -> None:
        requested = view.stop_requested is not None
        self.set_class(view.stopped, "-stopped")
        self.set_class(requested, "-requested")
        self.set_class(view.no_engine and not requested, "-no-engine")
        if view.stopped:
            word = "■  STOPPED  ■"
        else:
            word = ("▲  STOP REQUESTED — NOT YET APPLIED  ▲" if requested
                    else "●  RUNNING — NO ENGINE: NOTHING IS SENT  ●" if view.no_engine else "●  RUNNING  ●")
        self.query_one("#state-word", Static).update(Text(word, style="bold", justify="center"))
        self.query_one("#state-detail", Static).update(stop_facts(view))
        self.query_one("#resume-button", Button).display = view.stopped
        self.query_one("#stop-button", Button).display = not view.stopped
        self.query_one("#drain", Static).update(drain_line(view))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        action = "emergency_stop" if event.button.id == "stop-button" else "resume"
        self.run_action(f"app.{action}")


def engines_title(view: View) -> Text:
    """"Engines", how many are live and gone, and the rule that hides old gone ones."""
    text = Text("Engines", style="bold")
    if view.snapshot is None:
        return text
    ov = view.snapshot.overview
    gone = len(ov.engines) - len(ov.live_engines)
    text.append(f" · {len(ov.live_engines)} live")
    if gone:
        text.append(f" · {gone} gone")
    note = hidden_engines_note(ov)
    if note:
        text.append(f" · {note}", style="dim")
    return text


class EnginesTitle(Static, LiveWidget):
    def show(self, view: View) -> None:
        self.update(engines_title(view))


class EnginesTable(LiveTable, LiveWidget):
    """Every engine listed, live or gone; a gone one never shows as "not yet" honouring a stop."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(ENGINE_COLUMNS, **kwargs)

    def show(self, view: View) -> None:
        if view.snapshot is None:
            return
        ov = view.snapshot.overview
        rows = {}
        for e in ov.engines:
            if not e.alive:
                # Nothing of it runs: it can neither honour a stop nor send.
                ack, beat = "gone", f"gone, {fmt.ago(e.heartbeat_at, view.now)}"
            elif ov.account.stopped:
                acked = e.acknowledged_generation(ov.account.id) >= ov.account.generation
                ack, beat = ("yes" if acked else "not yet"), fmt.ago(e.heartbeat_at, view.now)
            else:
                ack, beat = "-", fmt.ago(e.heartbeat_at, view.now)
            rows[e.id] = (
                fmt.plain(e.host), Text(str(e.pid), justify="right"), fmt.number(e.workers),
                fmt.number(e.in_flight) if e.alive else Text("-", justify="right"),
                Text(fmt.rate(e.sent_rate) if e.alive else "-", justify="right"), Text(ack),
                fmt.plain(e.transport), Text(beat),
            )
        # Live ones first: they are the ones that can still send.
        self.sync(rows, [e.id for e in sorted(ov.engines, key=lambda e: not e.alive)])


class EngineProblems(Static, LiveWidget):
    """What keeps a live engine from sending (mail server unreachable, store locked), if anything."""

    def show(self, view: View) -> None:
        if view.snapshot is None:
            return
        problems = [e for e in view.snapshot.overview.engines if e.alive and e.note]
        # Height 0 rather than display: none, which would keep show() from being called.
        self.styles.height = "auto" if problems else 0
        text = Text()
        for e in problems:
            text.append("\n" if text else "")
            text.append(f"{fmt.visible(e.host)} pid {e.pid}: ", style="bold")
            text.append(fmt.plain(e.note or ""))
        self.update(text)


class SettingsTab(Vertical):
    def compose(self) -> ComposeResult:
        yield EmergencyPanel(id="emergency")
        yield EnginesTitle(classes="section-title")
        yield EngineProblems(id="engine-problems")
        yield EnginesTable(id="engines")
        yield RelaysPanel(id="relays")
        yield PolicyPanel(id="policy-panel")


RELAY_COLUMNS = (
    ("relay", "Relay", None),
    ("held", "Held", None),
    ("in_delivery", "In delivery at stop", None),
    ("delivered", "Delivered after", None),
    ("bounced", "Bounced after", None),
    ("ack", "Stop honoured", None),
    ("beat", "Heartbeat", None),
)


class RelaysTable(LiveTable, LiveWidget):
    """Each relay agent (mailconsole relay-agent): what it holds of the current stop."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(RELAY_COLUMNS, **kwargs)

    def show(self, view: View) -> None:
        if view.snapshot is None:
            return
        ov = view.snapshot.overview
        acc = ov.account
        rows = {}
        for r in ov.relays:
            ack = r.acknowledged.get(acc.id)
            stop = ack if acc.stopped and ack is not None and ack.generation >= acc.generation else None
            figures = (stop.held, stop.in_delivery, stop.delivered_after, stop.bounced_after) if stop else None
            honoured = ("yes" if r.honoured(acc.id, acc.generation) else "not yet") if acc.stopped else "-"
            rows[r.id] = (
                fmt.plain(f"{r.host} {r.relay or ''}".strip()),
                *(fmt.number(n) if figures else Text("-") for n in (figures or (0, 0, 0, 0))),
                Text(honoured),
                Text(fmt.ago(r.heartbeat_at, view.now) if r.alive else "gone"),
            )
        self.sync(rows, [r.id for r in ov.relays])


class RelaysPanel(Vertical, LiveWidget):
    """The relays section, shown only once a relay agent has reported; its problems above the table."""

    DEFAULT_CSS = """
    RelaysPanel { height: auto; }
    #relay-problems { color: $warning; padding: 0 1; }
    RelaysTable { height: auto; max-height: 8; }
    """

    def compose(self) -> ComposeResult:
        yield Static("Relays", classes="section-title")
        yield Static(id="relay-problems")
        yield RelaysTable(id="relays-table")

    def show(self, view: View) -> None:
        if view.snapshot is None:
            return
        relays = view.snapshot.overview.relays
        # Height 0 rather than display: none, which would keep show() from being called.
        self.styles.height = "auto" if relays else 0
        if self.parent is not None:
            self.parent.set_class(bool(relays), "-with-relays")  # the layout for relays (app.tcss)
        text = Text()
        for r in relays:
            if r.alive and r.note:
                text.append("\n" if text else "")
                text.append(f"{fmt.visible(r.host)} pid {r.pid}: ", style="bold")
                text.append(fmt.plain(r.note))
        problems = self.query_one("#relay-problems", Static)
        problems.styles.height = "auto" if text else 0
        problems.update(text)
