"""Starting the console: attach to a store, start an engine behind it when none runs.

The engine, when the console starts one, is an `EmbeddedEngine` (ENGINE_MODE
says how it runs); the console talks to it through the store and `nudge()`.
Quitting, or losing the terminal (SIGHUP on an SSH drop), stops that engine
gracefully: its claimed messages go back to the queue; then the process ends
within a bound, however the UI library's own shutdown goes (shutdown.py). An
engine running elsewhere is only observed and controlled, never stopped.
"""

from __future__ import annotations

import mailbox
import shlex
import sys
import tempfile
from pathlib import Path
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..store import Store, StoreError, accounts, default_db_url
from ..store import backends
from ..store.connection import to_url
from ..store.engines import live_engines
from .app import ENGINE_STOP_TIMEOUT, STOP_QUIT_WAIT, MailConsole
from .shutdown import ShutdownWatchdog

if TYPE_CHECKING:
    from ..cli.common import Context
    from ..engine.config import EngineConfig
    from ..engine.embedded import EmbeddedEngine, Mode

# trio guest mode on the console's own loop, not trio.run on a thread. Measured
# side by side (docs/benchmarks.md, "Console"): a guest engine runs only between
# the console's callbacks, never in the middle of one, and yields to the console
# while it handles a key, so key p95 was 66-101 ms against 145-176 ms and the
# stop's commit p95 6-12 ms against 13-23 ms, at the same throughput while
# nobody types (less while keys are pressed back to back).
ENGINE_MODE: Mode = "guest"
# With the engine's thread busy, every return of the UI (or the stop's commit) to
# Python waits for the GIL; CPython hands it over only every `switchinterval`
# (5 ms by default), and a key press needs many such returns. 0.5 ms keeps the
# console responsive at a small cost in engine throughput (docs/benchmarks.md).
SWITCH_INTERVAL = 0.0005
# The demo sends slowly on purpose: meters move, and there is time to press the stop key.
DEMO_RATE = 40.0
CONSOLE_NOTIFY_FLUSH = 5.0  # at quit, the last notifications get this long (the stop itself is saved)
DEMO_WORKERS = 4


def launch(ctx: Context) -> int:
    """`mailconsole` / `mailconsole console`."""
    from ..cli import ops_options

    args = ctx.args
    notifier = ops_options.notifier(args)  # a bad setting is refused before anything starts
    read_only = bool(getattr(args, "read_only", False))
    store = open_existing(ctx)
    engine = None
    notice = None
    config = None
    if read_only or getattr(args, "no_engine", False):
        pass
    elif live_engines(store):
        notice = "An engine is already sending on this store: this console observes and controls it."
    else:
        config = engine_config(getattr(args, "transport", None))
        if config.transport == "null:" and not getattr(args, "transport", None):
            # An engine with no transport configured would mark real mail as sent and drop it.
            notice = ("No engine started: no transport configured. Set MAILCONSOLE_TRANSPORT, "
                      "pass --transport, or run `mailconsole serve`.")
        else:
            engine = start_engine(store, config)
    # Previews and test sends use the engine's configuration; read only when first needed
    # when no engine was started here, so a console that only observes never loads the engine.
    settings = config if config is not None else (lambda: engine_config(getattr(args, "transport", None)))
    try:
        return run_console(store, ctx.account, engine=engine, read_only=read_only, notice=notice,
                           engine_config=settings, notifier=notifier)
    finally:
        ops_options.finish(notifier, CONSOLE_NOTIFY_FLUSH)


def open_existing(ctx: Context) -> Store:
    """The store named by --db (or the default), which must exist, on an account it has.

    Never created here: a mistyped path once opened an empty store that looked RUNNING,
    and the stop key then stopped that one while the real store kept sending.
    """
    path = store_file(ctx.db or default_db_url())
    if path is not None and not path.exists():
        raise StoreError(f"no store at {path}; `mailconsole init --db {shlex.quote(str(path))}` creates one "
                         "(`mailconsole demo` makes a demo store of its own)")
    store = ctx.store(create=False)
    accounts.state(store, ctx.account)  # NotFound: "no account named …; check --account"
    return store


def store_file(db: str) -> Path | None:
    """The local file of a store, None for a server (or an in-memory one)."""
    return backends.for_url(to_url(db)).file


def launch_demo(ctx: Context, store: Store) -> int:
    """`mailconsole demo`: the seeded demo store, a slow engine into a local Maildir, the console."""
    from .. import demo
    from ..engine.config import EngineConfig

    maildir = Path(tempfile.mkdtemp(prefix="mailconsole-demo-mail-")) / "Maildir"
    mailbox.Maildir(maildir, create=True)  # tmp/, new/, cur/ must exist before the first delivery
    importer = demo.start_preparing(store)  # a mailing visibly "preparing" (and deletable)
    config = EngineConfig(transport=f"maildir:{maildir}", workers=DEMO_WORKERS, rate=DEMO_RATE)
    engine = start_engine(store, config)
    notice = f"Demo: sending about {DEMO_RATE:.0f} messages/s into the Maildir {maildir}. Press F2 to stop them all."
    try:
        return run_console(store, ctx.account, engine=engine, notice=notice, engine_config=config)
    finally:
        getattr(importer, "stop_event", None) and importer.stop_event.set()  # type: ignore[attr-defined]
        print(f"demo mail delivered to {maildir}", file=sys.stderr)


def engine_config(transport: str | None = None) -> EngineConfig:
    """Flags > environment > defaults, as `mailconsole serve` reads them."""
    from ..engine.config import load_config

    return load_config(flags={"transport": transport})


def start_engine(store: Store, config: EngineConfig, mode: Mode | None = None) -> EmbeddedEngine:
    """The engine inside the console. A thread engine runs when this returns; a guest
    engine needs the console's loop, so the app starts it once mounted (and stops it)."""
    # Imported here: a console that only observes never loads the engine (or trio).
    from ..engine.embedded import EmbeddedEngine

    engine = EmbeddedEngine(store, config, mode=mode or ENGINE_MODE)
    sys.setswitchinterval(SWITCH_INTERVAL)
    if not engine.on_host_loop:
        engine.start()
    return engine


def run_console(
    store: Store,
    account: str = "default",
    *,
    engine: Any = None,
    read_only: bool = False,
    notice: str | None = None,
    engine_config: EngineConfig | Callable[[], EngineConfig] | None = None,
    notifier: Any = None,
) -> int:
    # Bounded: the longest the app may wait for a stop still being retried and for its
    # engine to return its claims, then the watchdog's grace (see shutdown.py).
    watchdog = ShutdownWatchdog(claims_timeout=STOP_QUIT_WAIT + ENGINE_STOP_TIMEOUT + 2)
    watchdog.arm()
    app = MailConsole(store, account, engine=engine, read_only=read_only, handle_signals=True, freeze_heap=True,
                      notice=notice, watchdog=watchdog, engine_config=engine_config, notifier=notifier)
    try:
        app.run()
    finally:
        # A guest engine was stopped by the app before its loop ended (MailConsole.on_unmount).
        if engine is not None and engine.running:
            try:
                print("stopping the engine inside the console (claimed messages go back to the queue)…",
                      file=sys.stderr)
            except OSError:
                pass  # the terminal is gone (EIO): the engine must be stopped all the same
            engine.stop(timeout=ENGINE_STOP_TIMEOUT)
        watchdog.claims_returned()
        if app.stop_handed_over is not None:
            try:
                print(f"the stop was not saved yet (store busy); `mailconsole stop` (pid {app.stop_handed_over}) "
                      "keeps trying until it is; check with `mailconsole status`", file=sys.stderr)
            except OSError:
                pass
    return app.return_code or 0
