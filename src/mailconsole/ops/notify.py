"""The notification hook: a command and/or a URL told about stops, resumes and trouble.

An operator's team learns of a stop, a resume, an automatic pause, a relay that
cannot hold or an engine that cannot send from its own tools (chat, paging) rather
than by watching the console. Each event is one JSON object; the command gets it on
stdin (and the main fields in MAILCONSOLE_* variables), the URL as a POST.

A notification never delays what it reports: `send()` only queues the event; one
thread per notifier delivers it, each attempt bounded by a timeout, a failed one
tried again after a growing pause. A failure is logged and kept in `problem` for the
caller to show (the heartbeat note, the command's output). A URL's secrets (the
password of its userinfo, its query values) appear nowhere: not in logs, not in
`problem`, not in the event.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import queue
import shlex
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..store.actor import Actor

log = logging.getLogger("mailconsole.notify")

# The events, by name (the payload's "event"). AUTOMATIC_PAUSE is sent by whatever
# pauses a mailing by policy: that caller builds the event like any other.
STOP, RESUME = "stop", "resume"
AUTOMATIC_PAUSE = "automatic_pause"
RELAY_CANNOT_HOLD, RELAY_CAN_HOLD = "relay_cannot_hold", "relay_can_hold"
ENGINE_CANNOT_SEND, ENGINE_CAN_SEND = "engine_cannot_send", "engine_can_send"
EVENTS = (STOP, RESUME, AUTOMATIC_PAUSE, RELAY_CANNOT_HOLD, RELAY_CAN_HOLD, ENGINE_CANNOT_SEND, ENGINE_CAN_SEND)

DEFAULT_TIMEOUT = 5.0  # seconds for one attempt (the command, or the POST with its answer)
DEFAULT_ATTEMPTS = 3
DEFAULT_BACKOFF = 1.0  # seconds before the second attempt; doubled before each further one
MAX_QUEUED = 1000  # events waiting; past that the oldest news is dropped, counted
MIN_SECRET = 4  # characters: a shorter query value is no credential
ERROR_TAIL = 300  # characters of a failing command's stderr kept for its error


class NotifyConfigError(ValueError):
    """A notification setting that cannot work; the message is one line."""


@dataclass(frozen=True)
class Event:
    """One notification. `who` is the actor (an operator, "engine", an agent id)."""

    event: str
    who: str
    why: str | None = None
    account: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    details: dict[str, object] = field(default_factory=dict)
    ssh_client: str | None = None
    program: str = "mailconsole"
    at: float = field(default_factory=time.time)

    def payload(self) -> dict[str, object]:
        return {
            "event": self.event,
            "who": self.who,
            "why": self.why,
            "account": self.account,
            "counts": dict(self.counts),
            "from": {"host": socket.gethostname(), "pid": os.getpid(), "ssh_client": self.ssh_client,
                     "program": self.program},
            "time": datetime.fromtimestamp(self.at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "details": dict(self.details),
        }

    @classmethod
    def by(cls, actor: Actor, event: str, **kwargs: object) -> "Event":
        """An operator's action: who is the OS user, from where their SSH client."""
        return cls(event, actor.user, ssh_client=actor.ssh_client, **kwargs)  # type: ignore[arg-type]


# -- the URL and its secrets -----------------------------------------------------

@dataclass(frozen=True)
class Target:
    """A notification URL taken apart: what is sent, and what may be shown."""

    url: str  # without userinfo: what urllib opens
    authorization: str | None  # the userinfo as a Basic header
    shown: str  # for logs and messages: no password, no query values
    secrets: tuple[str, ...]  # every text that must never be shown

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, "***")
        return text


def parse_url(url: str) -> Target:
    """Check a notification URL (http or https, a host); NotifyConfigError says what is wrong."""
    try:
        parts = urllib.parse.urlsplit(url.strip())
        host, port = parts.hostname, parts.port
    except ValueError:
        raise NotifyConfigError("--notify-url is not a URL (expected http[s]://host[:port]/path)") from None
    if parts.scheme not in ("http", "https") or not host:
        raise NotifyConfigError("--notify-url must be http://... or https://... with a host")
    netloc = host if ":" not in host else f"[{host}]"
    if port is not None:
        netloc += f":{port}"
    bare = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    secrets: list[str] = [url, url.strip(), bare]
    authorization = None
    if parts.username is not None or parts.password is not None:
        user = urllib.parse.unquote(parts.username or "")
        password = urllib.parse.unquote(parts.password or "")
        authorization = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        secrets += [p for p in (parts.password, password, authorization) if p]
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    # Every query value is masked in `shown`; in other text only those long enough to be
    # a token (replacing a "1" everywhere would garble the message, and hides nothing).
    secrets += [v for _, v in query if len(v) >= MIN_SECRET]
    shown_query = "&".join(f"{k}=***" for k, _ in query)
    shown = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path or "/", shown_query, ""))
    # Longest first, so that a secret containing another is replaced whole.
    return Target(bare, authorization, shown, tuple(sorted(set(secrets), key=len, reverse=True)))


# -- the notifier ------------------------------------------------------------------

Problem = Callable[[str | None], None]


class Notifier:
    """Delivers events to a command and/or a URL on its own thread.

    `send()` never blocks and never raises. `problem` is the last failure (None once
    a delivery succeeds again); `on_problem`, if given, is called with it from the
    notifier's thread whenever it changes. `close(wait)` lets queued events go out
    for at most `wait` seconds, then gives up on them.
    """

    def __init__(
        self,
        command: str | None = None,
        url: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        attempts: int = DEFAULT_ATTEMPTS,
        backoff: float = DEFAULT_BACKOFF,
        on_problem: Problem | None = None,
    ) -> None:
        if command is not None and not command.strip():
            raise NotifyConfigError("--notify-command is empty")
        self._argv = shlex.split(command) if command else None
        self._target = parse_url(url) if url else None
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.on_problem = on_problem
        self.problem: str | None = None
        self.delivered = 0
        self.failed = 0
        self.dropped = 0
        self._queue: queue.Queue[Event | None] = queue.Queue(MAX_QUEUED)
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mailconsole-notify", daemon=True)
        self._thread.start()

    @property
    def shown(self) -> str:
        """What is configured, as it may be shown."""
        parts = []
        if self._argv:
            parts.append(f"command {self._argv[0]}")
        if self._target:
            parts.append(f"url {self._target.shown}")
        return ", ".join(parts)

    def send(self, event: Event) -> None:
        """Queue `event` for delivery; returns at once."""
        self._enqueue(event)

    def _enqueue(self, event: Event | None) -> None:
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.dropped += 1
            try:  # the newest news matters more than the oldest
                self._queue.get_nowait()
                self._queue.put_nowait(event)
            except (queue.Empty, queue.Full):
                pass

    def close(self, wait: float) -> bool:
        """Deliver what is queued for at most `wait` seconds; True if everything went out."""
        self._enqueue(None)  # the end mark, after what is queued
        self._thread.join(wait)
        self._closing.set()  # a retry still pausing gives up now
        return not self._thread.is_alive()

    # -- the thread --------------------------------------------------------------

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            if event is None:
                return
            problems = []
            body = json.dumps(event.payload(), ensure_ascii=False).encode()
            if self._argv:
                problems.append(self._deliver("command", lambda: self._run_command(event, body)))
            if self._target:
                problems.append(self._deliver("url", lambda: self._post(body)))
            failures = [p for p in problems if p]
            self._set_problem(f"notification {event.event} failed: " + "; ".join(failures) if failures else None)

    def _deliver(self, what: str, attempt: Callable[[], None]) -> str | None:
        """Try up to `attempts` times; None when delivered, else the last error (shown safe)."""
        error = ""
        for n in range(1, self.attempts + 1):
            try:
                attempt()
            except Exception as exc:  # noqa: BLE001  whatever goes wrong is reported, never raised
                error = self._safe(f"{exc.__class__.__name__}: {exc}" if not isinstance(exc, _Failed) else str(exc))
                log.warning("notification %s, attempt %d of %d failed: %s", what, n, self.attempts, error)
                if n < self.attempts and self._closing.wait(self.backoff * 2 ** (n - 1)):
                    break
                continue
            self.delivered += 1
            return None
        self.failed += 1
        return f"{what}: {error} (tried {n}x)"

    def _safe(self, text: str) -> str:
        return self._target.scrub(text) if self._target else text

    def _set_problem(self, problem: str | None) -> None:
        if problem is not None:
            log.error("%s", problem)
        if problem != self.problem:
            self.problem = problem
            if self.on_problem is not None:
                try:
                    self.on_problem(problem)
                except Exception:  # noqa: BLE001  the caller's display must not stop the thread
                    log.exception("showing a notification problem failed")

    def _run_command(self, event: Event, body: bytes) -> None:
        assert self._argv is not None
        env = {**os.environ, "MAILCONSOLE_EVENT": event.event, "MAILCONSOLE_WHO": event.who,
               "MAILCONSOLE_WHY": event.why or "", "MAILCONSOLE_ACCOUNT": event.account or ""}
        with tempfile.TemporaryFile() as err:
            # Its own process group, so that a timeout ends the hook and everything it started;
            # stdout discarded and stderr in a file, so that no pipe left open keeps us waiting.
            proc = subprocess.Popen(self._argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err,
                                    env=env, start_new_session=True)
            try:
                proc.communicate(body, timeout=self.timeout)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                raise _Failed(f"{self._argv[0]} did not finish within {self.timeout:g} s (killed)") from None
            except BaseException:
                _kill_group(proc)
                raise
            if proc.returncode != 0:
                err.seek(0)
                tail = err.read()[-ERROR_TAIL:].decode(errors="replace").strip().replace("\n", " ")
                raise _Failed(f"{self._argv[0]} exited with {proc.returncode}" + (f": {tail}" if tail else ""))

    def _post(self, body: bytes) -> None:
        target = self._target
        assert target is not None
        headers = {"Content-Type": "application/json", "User-Agent": "mailconsole-notify"}
        if target.authorization:
            headers["Authorization"] = target.authorization
        request = urllib.request.Request(target.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310  http(s) checked
                answer.read(65536)
        except urllib.error.HTTPError as exc:
            raise _Failed(f"{target.shown} answered {exc.code} {exc.reason}") from None
        except urllib.error.URLError as exc:
            raise _Failed(f"{target.shown}: {exc.reason}") from None
        except (TimeoutError, socket.timeout):
            raise _Failed(f"{target.shown} did not answer within {self.timeout:g} s") from None


class _Failed(Exception):
    """An attempt failed; the message is already fit to show."""


def _kill_group(proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def from_settings(command: str | None, url: str | None, *, timeout: float = DEFAULT_TIMEOUT,
                  on_problem: Problem | None = None) -> Notifier | None:
    """A notifier for what is set (flags, else MAILCONSOLE_NOTIFY_COMMAND / _URL); None if nothing is."""
    command = command if command is not None else os.environ.get("MAILCONSOLE_NOTIFY_COMMAND") or None
    url = url if url is not None else os.environ.get("MAILCONSOLE_NOTIFY_URL") or None
    if command is None and url is None:
        return None
    if not timeout > 0 or timeout > 600:
        raise NotifyConfigError("--notify-timeout must be more than 0 and at most 600 seconds")
    return Notifier(command, url, timeout=timeout, on_problem=on_problem)


def engine_listener(notifier: Notifier, engine: object) -> Callable[[str, dict[str, object]], None]:
    """Engine.on_event for `serve`: each engine event becomes a notification (queued only)."""

    def tell(event: str, details: dict[str, object]) -> None:
        details = dict(details)
        why = details.pop("why", None)
        account = details.pop("account", None)
        counts = {"in_flight": max(getattr(engine, "held", 0), 0), "sent": getattr(engine, "sent_total", 0),
                  "failed": getattr(engine, "failed_total", 0)}
        notifier.send(Event(event, f"engine {getattr(engine, 'engine_id', '?')}", why=str(why) if why else None,
                            account=str(account) if account else None, counts=counts, details=details,
                            program="mailconsole serve"))

    return tell


def agent_listener(notifier: Notifier, agent: object) -> Callable[[str, dict[str, object]], None]:
    """Agent.on_event for `relay-agent`: a relay that cannot hold (or can again)."""

    def tell(event: str, details: dict[str, object]) -> None:
        details = dict(details)
        why = details.pop("why", None)
        counts = dict(getattr(agent, "counts", {}))
        size = getattr(agent, "queue_size", None)
        if size is not None:
            counts["at_relay"] = size
        notifier.send(Event(event, f"relay agent {getattr(agent, 'agent_id', '?')}", why=str(why) if why else None,
                            counts=counts, details=details, program="mailconsole relay-agent"))

    return tell
