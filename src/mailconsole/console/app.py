"""The console app: tabs, the refresh loop, and every operator action.

Threads: the UI thread never waits on the database. Reads happen in a worker
thread once per `poll_interval`, and at once when the store's wake-ups (LISTEN
on PostgreSQL) say something changed, and come back through `call_from_thread`;
actions run in worker threads too. The one exception is the first read on
mount, so the first frame already shows the real state (it reads counters
only, so it is as fast on a million queued messages as on none).

Beside it: the stop key's commit, retried until saved (stopping.py); the
header every screen carries (header.py); the bounded shutdown of a real
session (shutdown.py).
"""

from __future__ import annotations

import asyncio
import gc
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from rich.text import Text
from textual import events, work
from textual.app import App, ComposeResult
from textual.css.query import NoMatches
from textual.dom import DOMNode
from textual.widget import Widget
from textual.widgets import DataTable, Input, TabbedContent, TabPane, TextArea
from textual.worker import get_current_worker

from ..store import Actor, Store, StoreError
from ..store import accounts, relays, stop_intent
from ..store.backends import FenceResult
from ..store.dot_fence import fence_result, wait_for_allowed_dots
from . import compact
from . import format as fmt
from . import notifying
from . import textual_fixes
from .account_rates import AccountRates, shown_rate
from .account_switch import SwitchesAccount
from .analytics_tab import AnalyticsTab
from .audit_tab import AuditTab
from .commands import ConsoleCommands
from .compact import CompactFooter
from .detail import DetailScreen
from .header import ConsoleHeader
from .help_screen import HelpScreen
from .keys import bindings
from .live import Snapshot, read_snapshot
from .mailing_actions import MailingActions
from .meters import Meters
from .modals import ConfirmScreen
from .planned_tab import PlannedTab
from .policy_actions import PolicyActions
from .quitting import QUIT_TITLE, quit_question
from .rates import RateHistory
from .resume_dialog import resume_body
from .resume_dialog import summary as resume_summary
from .settings_tab import SettingsTab
from .shutdown import ShutdownWatchdog, exit_on_output_failure, exit_on_signals
from .stopping import StopProgress, StopRequest, hand_over
from .table_actions import TableActions
from .tables import LiveTable
from .view import LiveWidget, View

if TYPE_CHECKING:
    from ..engine.config import EngineConfig

STOP_REASON = "stop key in the console"
RELAY_WAIT = 2.0  # seconds the stop waits (off the UI thread) for relay agents to report what they held
STOP_HEAD_START = 0.03  # seconds the stop's commit may run before the key's first frame
# How long quitting waits for a stop still being retried before a `mailconsole stop`
# of its own takes it over (stopping.hand_over): the stop is never dropped.
STOP_QUIT_WAIT = 2.0
ENGINE_STOP_TIMEOUT = 15.0  # a graceful stop of the engine inside the console, on quitting
# After a key, how long an engine on the console's own loop yields to the console
# (EmbeddedEngine.prioritize_host): about a slow key's handling and frame.
KEY_PRIORITY = 0.15
ENGINES_EMPTY = "No engine is running: nothing is sent. Start one with `mailconsole serve`."


class Engine(Protocol):
    """What the console needs from an engine running inside it (`engine.embedded.EmbeddedEngine`).

    `on_host_loop` says where it runs. True (trio guest mode): on the console's own
    event loop, so the console starts it once its loop runs (`start`), lends it the
    loop less while a key is handled (`prioritize_host`), and stops it before the
    loop ends (`aclose`), which returns its claims to the queue. False: on its own
    thread, started before the console and stopped after it (`stop`, by the
    launcher). `error` is what ended it early, if anything: shown, never hidden.
    """

    error: BaseException | None

    @property
    def engine_id(self) -> str: ...

    @property
    def on_host_loop(self) -> bool: ...

    @property
    def started(self) -> bool: ...

    @property
    def running(self) -> bool: ...

    def start(self) -> None: ...

    def nudge(self) -> None: ...

    def prioritize_host(self, seconds: float) -> None: ...

    async def aclose(self, timeout: float = ...) -> None: ...

    def stop(self, timeout: float = ...) -> None: ...


textual_fixes.apply()


def _on_app_loop(engine: Engine | None) -> bool:
    return engine is not None and engine.on_host_loop


# The garbage collector's full passes, on the UI thread, were the largest cause of
# slow key presses with an engine sending (docs/benchmarks.md): left to itself it
# ran one every few seconds, over ~17,000 objects in reference cycles (Textual's
# render caches, SQLAlchemy statements), for 30-120 ms. So a real session freezes
# what is alive after start-up (never scanned again) and collects every second,
# which keeps each pass small: 2-7 ms measured.
GC_EVERY = 1.0
# Seconds a wait for the store's wake-ups lasts: how soon the listening thread sees the app close.
WAKEUP_WAIT = 0.5
# The worker group of that thread: it runs as long as the app does (never waited for).
WAKEUPS = "wakeups"


def _freeze_heap() -> None:
    gc.collect()
    gc.freeze()


def _collect_garbage() -> None:
    gc.collect()


def _displayed(widget: Widget) -> bool:
    node: DOMNode | None = widget
    while isinstance(node, Widget):
        if not node.display:
            return False
        node = node.parent
    return True


class MailConsole(SwitchesAccount, MailingActions, PolicyActions, TableActions, App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "mailconsole"
    BINDINGS = bindings()
    COMMANDS = App.COMMANDS | {ConsoleCommands}

    def __init__(
        self,
        store: Store,
        account: str = "default",
        *,
        clock: Callable[[], float] = time.time,
        actor: Actor | None = None,
        engine: Engine | None = None,
        read_only: bool = False,
        poll_interval: float | None = 0.5,
        handle_signals: bool = False,
        freeze_heap: bool = False,
        notice: str | None = None,
        host: str | None = None,
        store_label: str | None = None,
        watchdog: ShutdownWatchdog | None = None,
        engine_config: EngineConfig | Callable[[], EngineConfig] | None = None,
        notifier: Any = None,
    ) -> None:
        super().__init__()
        self.store = store
        self.account = account
        self.clock = clock
        self.actor = actor or Actor.current()
        self.engine = engine
        self.read_only = read_only or store.read_only
        self.poll_interval = poll_interval
        self.handle_signals = handle_signals
        self.freeze_heap = freeze_heap
        self.notice = notice
        self.watchdog = watchdog
        # The notification hook told of stops and resumes (console/notifying.py), if configured.
        self.notifier = notifier
        if notifier is not None:
            notifying.attach(self, notifier)
        # The engine configuration previews and test sends use: the embedded engine's when
        # there is one, else read when first needed (a callable), else the defaults.
        self._engine_config = engine_config
        # Shown in every screen's header; given by tests so that snapshots do not vary.
        self.host = host or socket.gethostname()
        self.store_label = store_label or store.where
        self.rates = RateHistory()
        self.account_rates = AccountRates()  # every account's, for the picker (account_rates.py)
        self.snapshot: Snapshot | None = None
        # True from the stop's commit until a read shows it: the screen says STOPPED at once.
        self.stop_pending = False
        self.drain_from: int | None = None
        # Seconds (perf_counter) from the stop key to the stop's commit: the benchmark reads it.
        self.stop_timings: list[float] = []
        self._reads = 0  # reads started; orders snapshots that finish out of order
        self._applied = -1
        self._reading = False
        self._poll_again = False
        self._stop_seen_from = 0  # a read started at or after this one sees our stop
        self._engine_error_shown = False
        # The newest press of the stop key, and what it last reported while not yet saved.
        self.stop_request: StopRequest | None = None
        self.stop_account = account  # the account that press was for (a switch may follow it)
        # The pid of the `mailconsole stop` that took over a stop not saved when the console closed.
        self.stop_handed_over: int | None = None
        self.stop_progress: StopProgress | None = None
        self._stopped_state: accounts.AccountState | None = None  # the last stop this console committed
        self.wakeups = 0  # reads started by the store's wake-ups (tests count them)
        self.listening = False  # the store's wake-ups reach this console (a listener is connected)

    # -- layout --------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield ConsoleHeader()
        yield Meters(id="meters")
        with TabbedContent(initial="settings", id="tabs"):
            with TabPane("Settings/Other", id="settings"):
                yield SettingsTab()
            with TabPane("Sent Analytics", id="analytics"):
                yield AnalyticsTab(id="analytics-tab")
            with TabPane("Planned", id="planned"):
                yield PlannedTab(id="planned-tab")
            with TabPane("Audit", id="audit"):
                yield AuditTab(id="audit-tab")
        yield CompactFooter()

    def on_mount(self) -> None:
        self.query_one("#filter", Input).display = False
        self.query_one("#engines", LiveTable).empty = ENGINES_EMPTY
        compact.apply(self, self.size.width, self.size.height)
        try:
            self._apply(read_snapshot(self.store, self.account, self.clock()), self._next_read())
        except StoreError as exc:
            self.notify(str(exc), severity="error", markup=False)
        self.refresh_views()
        if self.notice:
            self.notify(self.notice, markup=False, timeout=10)
        self._start_engine_on_loop()
        if self.poll_interval:
            self.set_interval(self.poll_interval, self.poll)
            self._listen()  # polling stays behind the wake-ups: a lost one costs a poll
        if self.freeze_heap:
            self.call_after_refresh(_freeze_heap)
            self.set_interval(GC_EVERY, _collect_garbage)
        if self.handle_signals:
            # An SSH drop sends SIGHUP: leave cleanly (the launcher then stops the engine).
            loop = asyncio.get_running_loop()
            if self.watchdog is None:
                for sig in (signal.SIGHUP, signal.SIGTERM):
                    loop.add_signal_handler(sig, self.exit)
            else:
                # Bounded whatever Textual does next (see shutdown.py).
                exit_on_signals(self.watchdog, lambda signum: loop.call_soon_threadsafe(self._exit_on_signal, signum))
                exit_on_output_failure(self.watchdog, lambda: loop.call_soon_threadsafe(self.exit, None, 1))

    def _exit_on_signal(self, signum: int) -> None:
        self.exit(return_code=128 + signum)

    def exit(self, result: None = None, return_code: int = 0, message: Any = None) -> None:
        if self.watchdog is not None:
            self.watchdog.begin(return_code, "quit")
        super().exit(result, return_code, message)

    async def action_quit(self) -> None:
        """q, ctrl+q and the palette: ask first if quitting stops the sending (quitting.py)."""
        if isinstance(self.screen, ConfirmScreen) and self.screen.id == "quit-confirm":
            return  # already asking
        engine = self.engine
        running = engine is not None and engine.running and engine.error is None
        question = quit_question(self.view(), engine.engine_id if running and engine else None)
        if question is None:
            self.exit()
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.exit()

        self.push_screen(ConfirmScreen(QUIT_TITLE, question, "Quit", id="quit-confirm"), answered)

    def _start_engine_on_loop(self) -> None:
        """A guest engine starts here, after the first frame's data: it needs this loop running."""
        engine = self.engine
        if engine is None or not engine.on_host_loop or engine.started:
            return
        try:
            engine.start()
        except Exception as exc:  # shown like an engine that died later (see _check_engine)
            engine.error = exc
            self._check_engine()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and self.engine is not None and self.engine.on_host_loop:
            self.engine.prioritize_host(KEY_PRIORITY)
        await super().on_event(event)

    # -- the view --------------------------------------------------------------

    def view(self) -> View:
        return View(
            self.snapshot, self.rates, self.clock(), self.stop_pending, self.drain_from,
            self.read_only, self.engine is not None, self.stop_progress,
        )

    def refresh_views(self) -> None:
        """Redraw every visible live widget on every open screen from one View.

        Panes on hidden tabs are skipped (they catch up when their tab opens): with an
        engine busy in the same process, UI work is what delays the next key press.
        """
        view = self.view()
        with self.batch_update():
            for screen in self.screen_stack:
                for widget in screen.walk_children(LiveWidget):
                    if _displayed(widget):
                        widget.show(view)

    # -- reading ---------------------------------------------------------------

    def _next_read(self) -> int:
        self._reads += 1
        return self._reads

    def poll(self) -> None:
        """Start a read unless one is still running (a slow store must not pile reads up)."""
        if self._reading:
            self._poll_again = True  # e.g. a new selection: read once more when this one lands
            return
        try:
            selected, audit = self.selected_mailing(), self.tabs.active == "audit"
        except NoMatches:
            return  # the timer outlived the widgets: the app is closing
        self._reading = True
        self._poll_again = False
        self._read(selected, audit, self._next_read(), self.account)

    @work(thread=True, group="read", exit_on_error=False)
    def _read(self, selected: int | None, audit: bool, seq: int, account: str) -> None:
        try:
            snap = read_snapshot(self.store, account, self.clock(), selected, audit=audit)
        except StoreError as exc:
            self._from_thread(self._read_failed, exc)
            return
        self._from_thread(self._apply, snap, seq)

    @work(thread=True, group=WAKEUPS, exit_on_error=False)
    def _listen(self) -> None:
        """Read at once when the store says the stop state or the work changed (a stop,
        pause, resume or new mailing made anywhere), where the store has wake-ups."""
        worker = get_current_worker()
        listener = self.store.backend.listener()
        if listener is None:
            return  # SQLite: the polls are all there is
        try:
            while not worker.is_cancelled:
                self.listening = listener.connected
                if listener.wait(WAKEUP_WAIT) and not worker.is_cancelled:
                    self._from_thread(self._woken)
        finally:
            self.listening = False
            listener.close()

    def _woken(self) -> None:
        self.wakeups += 1
        self.poll()

    def _read_failed(self, exc: StoreError) -> None:
        self._reading = False
        self._poll_again = False
        self.notify(str(exc), severity="error", markup=False)

    def _check_engine(self) -> None:
        """An engine inside the console that died must not look like a quiet queue."""
        error = self.engine.error if self.engine is not None else None
        if error is not None and not self._engine_error_shown:
            self._engine_error_shown = True
            self.notify(f"The engine inside this console stopped: {error!r}. Nothing is being sent "
                        "by it; restart the console or run `mailconsole serve`.",
                        severity="error", markup=False, timeout=60)

    def _apply(self, snap: Snapshot, seq: int) -> None:
        self._check_engine()
        self._reading = False
        if self._poll_again:
            self.poll()
        if seq <= self._applied or snap.account != self.account:
            return  # older than what is shown, or read for the account shown before a switch
        self._applied = seq
        previous = self.snapshot
        if snap.audit is None and self.snapshot is not None:
            snap = replace(snap, audit=self.snapshot.audit)
        self.snapshot = snap
        self.account_rates.add(snap.taken_at, snap.accounts)
        self.rates.add(snap.taken_at, shown_rate(snap, self.account_rates), snap.mailings)
        if self.stop_pending and (snap.stopped or seq >= self._stop_seen_from > 0):
            self.stop_pending = False
        if not snap.stopped and not self.stop_pending:
            self.drain_from = None
        if snap.stopped:
            self.stop_progress = None  # saved, by this console or another
        if bool(snap.trips) != bool(previous is not None and previous.trips):
            self.refresh_bindings()  # the acknowledge key comes and goes with the banner
        self.refresh_views()

    def _from_thread(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            self.call_from_thread(fn, *args)
        except RuntimeError:
            pass  # the app is shutting down; nothing left to show

    # -- running store actions off the UI thread ---------------------------------

    def run_store(
        self,
        fn: Callable[[], Any],
        done: Callable[[Any], None] | None = None,
        failed: Callable[[StoreError], None] | None = None,
        *,
        group: str = "actions",
    ) -> None:
        """Run a store call in a worker thread; `done`/`failed` run back on the UI thread.

        group "actions" (an action on the account shown) holds off an account
        switch until it is done; "reports" (what an action already done reports
        later) does not.
        """
        self.run_worker(lambda: self._store_call(fn, done, failed), thread=True, group=group, exit_on_error=False)

    def _store_call(self, fn: Callable[[], Any], done: Any, failed: Any) -> None:
        try:
            result = fn()
        except StoreError as exc:
            self._from_thread(failed or self._show_error, exc)
            return
        self._from_thread(self._store_done, done, result)

    def _store_done(self, done: Callable[[Any], None] | None, result: Any) -> None:
        if done is not None:
            done(result)
        self.poll()

    def _show_error(self, exc: StoreError) -> None:
        self.notify(str(exc), severity="error", markup=False, timeout=8)

    def notify(self, message: str, **kwargs: Any) -> None:  # type: ignore[override]
        """Every toast's text escaped: errors and notices quote operator data (names, --account)."""
        super().notify(fmt.visible(message), **kwargs)

    def _refuse_read_only(self, what: str) -> bool:
        if self.read_only:
            self.notify(
                f"Read-only console: {what} refused. Restart without --read-only to act.",
                severity="error", markup=False,
            )
        return self.read_only

    def _nudge(self) -> None:
        if self.engine is not None:
            self.engine.nudge()

    # -- the stop key --------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "emergency_stop_bare":
            # "!" stops only where no text is being typed; there it types "!".
            return not isinstance(self.focused, (Input, TextArea))
        if action == "acknowledge_automatic":
            # In the footer only while the banner shows something to acknowledge.
            return self.snapshot is not None and bool(self.snapshot.trips)
        return True

    def action_emergency_stop_bare(self) -> None:
        self.action_emergency_stop()

    def action_emergency_stop(self) -> None:
        """Never asks. The commit starts at once, on its own thread, and is retried until saved.

        The screen says STOPPED only once the commit returned; until then it says
        STOP REQUESTED and why it is not applied yet (see stopping.py).
        """
        if self._refuse_read_only("stop"):
            return
        if self.stop_request is not None and not self.stop_request.applied.is_set():
            self.refresh_views()  # already being retried: another press adds nothing
            return
        account = self.account  # retried for this account, whatever is shown meanwhile
        request = StopRequest(
            lambda: self._commit_stop(account),
            after_commit=lambda: self._stop_saved(request),
            fence=lambda: self._fence_passed(fence_result(self.store)),
            report=lambda progress: self._from_thread(self._stop_progress, request, progress),
            done=lambda: self._from_thread(self._stop_committed),
            announce=lambda: self._announce_stop(account),
        )
        request.start()
        self.stop_request = request
        self.stop_account = account
        # Give the commit the interpreter for a moment: waiting here releases the GIL, so the
        # commit is not slowed by this thread repainting (or by a busy engine thread).
        # Usually it is saved in a few ms and the first frame already says STOPPED.
        # Only the commit is waited for, not the dot fence after it: an engine on this
        # thread's loop (guest mode) can only leave the fence once this handler returns.
        request.first_attempt.wait(STOP_HEAD_START)
        self._stop_progress(request, request.progress)

    def _commit_stop(self, account: str) -> accounts.AccountState:
        """One attempt; a stop intent posted meanwhile is spent by this commit."""
        done = accounts.commit_stop(self.store, self.actor, account, reason=STOP_REASON)
        stop_intent.remove(self.store, done.id, done.generation)
        self._stopped_state = done
        notifying.stopped(self, done, STOP_REASON)
        return done

    def _announce_stop(self, account: str) -> None:
        """The store is busy: post the stop intent, as `mailconsole stop` does.

        Engines on this host (the one inside this console too, once nudged) then
        send nothing more of the account although the store has not recorded the
        stop; the fence makes sure no dot allowed before the intent is still on
        its way. The screen keeps saying STOP REQUESTED until the commit.
        """
        if accounts.post_intent(self.store, self.actor, account) is not None:
            self._nudge()
            wait_for_allowed_dots(self.store)

    def _fence_passed(self, found: FenceResult) -> None:
        """On the stop's thread, after the fence: name the engines that did not confirm
        the stop in time (a store shared by many hosts), and when they are certain to have stopped."""
        if found.unconfirmed:
            names = "; ".join(f"{fmt.visible(u.engine_id)} (host {fmt.visible(u.host)}, pid {u.pid}): sends "
                              f"nothing allowed before the stop since {fmt.clock_time(u.certain_by)}"
                              for u in found.unconfirmed)
            self._from_thread(lambda: self.notify(f"Stop not confirmed by {names}", title="Engines not confirmed",
                                                  severity="warning", timeout=60, markup=False))

    def _stop_saved(self, request: StopRequest) -> None:
        """On the stop's thread, right after its commit: measure, then nudge the engine.

        The nudge makes the engine behind us turn back what is at the final-dot gate,
        so that the dot fence, passed next, is free sooner.
        """
        if request.committed_after is not None:
            self.stop_timings.append(request.committed_after)
        self._nudge()

    def _stop_progress(self, request: StopRequest, progress: StopProgress) -> None:
        if request is not self.stop_request:
            return
        if progress.applied:
            if self.stop_progress is not None or not self.stop_pending:
                if self.snapshot is not None and not self.snapshot.stopped:
                    self.drain_from = self.snapshot.overview.in_flight
                self.stop_pending = True
            self.stop_progress = None
        else:
            self.stop_progress = progress
        self.refresh_views()

    async def on_unmount(self) -> None:
        if self.watchdog is not None:
            self.watchdog.begin(self.return_code or 0, "closing")  # however the app came to close
        # Quitting right after the stop key must not cut its commit short. Waited for
        # without blocking the loop: the commit's thread may still need it (the dot
        # fence with a guest engine, its last call_from_thread).
        deadline = time.monotonic() + STOP_QUIT_WAIT
        request = self.stop_request
        while request is not None and request.is_alive() and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        if request is not None:
            request.cancel()
            if not request.applied.is_set():
                self.stop_handed_over = hand_over(self.store.url, self.stop_account, STOP_REASON)
        if self.engine is not None and self.engine.on_host_loop:
            # Before the loop ends: the engine needs it to return its claims to the queue.
            await self.engine.aclose(ENGINE_STOP_TIMEOUT)
        if self.watchdog is not None and (self.engine is None or _on_app_loop(self.engine)):
            self.watchdog.claims_returned()  # a thread engine is stopped after the app (launch.run_console)

    def _stop_committed(self) -> None:
        self._stop_seen_from = self._reads + 1
        self.poll()
        done = self._stopped_state
        if done is not None:
            # After the commit and the fence, as `mailconsole stop`: what each relay held.
            self.run_store(lambda: relays.wait_for_stop(self.store, done.id, done.generation, RELAY_WAIT),
                           lambda results: self._relays_after_stop(done.name, results), group="reports")

    def _relays_after_stop(self, account: str, results: list[relays.StopAtRelay]) -> None:
        if results:
            late = any(r.ack is None for r in results)
            self.notify("\n".join(r.summary(RELAY_WAIT) for r in results),
                        title=f"Relays after the stop of account {account}",
                        severity="warning" if late else "information", markup=False, timeout=15)

    # -- resume ------------------------------------------------------------------

    def action_resume(self) -> None:
        if self._refuse_read_only("resume"):
            return
        self.run_store(lambda: accounts.resume_preview(self.store, self.account), self._confirm_resume)

    def _confirm_resume(self, plan: accounts.ResumePlan) -> None:
        if not plan.stopped:
            self.notify("The account is not stopped: nothing to resume.")
            return
        body = resume_body(plan)

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_store(lambda: accounts.resume(self.store, self.actor, self.account), self._resumed)

        self.push_screen(ConfirmScreen("Resume sending?", body, "Resume", danger=False), answered)

    def _resumed(self, plan: accounts.ResumePlan) -> None:
        notifying.resumed(self, self.account, plan)
        self.drain_from = None
        self.notify(f"Resumed: {resume_summary(plan)}", markup=False)

    # -- the selected mailing ------------------------------------------------------

    @property
    def tabs(self) -> TabbedContent:
        return self.query_one("#tabs", TabbedContent)

    def selected_mailing(self) -> int | None:
        """The mailing on screen: the one a detail view shows, else the selected row."""
        detail = next((s for s in reversed(self.screen_stack) if isinstance(s, DetailScreen)), None)
        if detail is not None:
            return detail.mailing_id
        if self.tabs.active == "planned":
            return self.query_one(PlannedTab).selected
        return self.query_one(AnalyticsTab).selected

    # -- navigation ------------------------------------------------------------------

    def action_show_tab(self, tab: str) -> None:
        self.tabs.active = tab
        self.focus_shown_table()

    def action_toggle_planned(self) -> None:
        self.tabs.active = "analytics"
        self.query_one(AnalyticsTab).toggle_planned()

    def action_filter(self) -> None:
        self.tabs.active = "analytics"
        self.query_one(AnalyticsTab).open_filter()

    def action_back(self) -> None:
        self.query_one(AnalyticsTab).close_filter(clear=True)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def on_tabbed_content_tab_activated(self) -> None:
        self.refresh_views()  # the pane was skipped while hidden
        self.focus_shown_table()  # a tab clicked: the arrows move its rows
        self.poll()

    def action_open_detail(self) -> None:
        """The selected mailing's detail view; reading only, so a read-only console opens it too."""
        if any(isinstance(s, DetailScreen) for s in self.screen_stack):
            return  # asked from the palette on top of one: it is already open
        if self.tabs.active not in ("analytics", "planned"):
            self.tabs.active = "analytics"
            self.notify("Select the mailing here, then press Enter again.")
            return
        mid = self.selected_mailing()
        if mid is None:
            self.notify("No mailing selected.")
            return
        self.push_screen(DetailScreen(mid))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a row of Sent Analytics or Planned (the table's own Enter) opens its detail view."""
        if event.data_table.id in ("mailings", "planned"):
            event.stop()
            self.action_open_detail()

    def engine_settings(self) -> EngineConfig:
        """The engine configuration to render and test-send with (see __init__).

        One that cannot be read (a bad MAILCONSOLE_TRANSPORT) is said once; the
        defaults are used then, whose null: transport sends nothing.
        """
        from ..engine.config import ConfigError, EngineConfig

        if isinstance(self._engine_config, EngineConfig):
            return self._engine_config
        try:
            config = self._engine_config() if self._engine_config is not None else EngineConfig()
        except ConfigError as exc:
            self.notify(f"Engine configuration not usable ({exc}): previews use the defaults and test sends "
                        "send nothing.", severity="error", markup=False, timeout=15)
            config = EngineConfig()
        self._engine_config = config
        return config

    def on_resize(self, event: events.Resize) -> None:
        compact.apply(self, event.size.width, event.size.height)

    def on_mailings_table_selected(self) -> None:
        self.poll()  # fetch the per-revision counts of the newly selected mailing
