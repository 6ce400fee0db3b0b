"""The processes a reliability scenario kills and restarts: `mailconsole serve` engines and
a console with an embedded engine, running under tmux so that Textual has a real terminal.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
from pathlib import Path

from engine.conftest import MAILCONSOLE, serve


def cli(db: Path, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """One `mailconsole` command as an operator types it; fails the test if it fails."""
    done = subprocess.run([MAILCONSOLE, "--db", str(db), *args], capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"mailconsole {' '.join(args)}: {done.stderr}"
    return done


def status(db: Path) -> dict:
    return json.loads(cli(db, "status", "--json").stdout)


class EngineProcess:
    """One `mailconsole serve`; its output goes to a log file (a pipe nobody reads could block it)."""

    def __init__(self, name: str, db: Path, port: int, config: Path, logs: Path, *extra: str,
                 env: dict[str, str] | None = None) -> None:
        self.name, self._args, self._logs = name, (db, port, config, *extra), logs
        self._env = {**os.environ, **(env or {})}
        self.starts = 0
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        self.starts += 1
        log = (self._logs / f"{self.name}-{self.starts}.log").open("w")
        self.proc = serve(*self._args, stdout=log, stderr=subprocess.STDOUT, env=self._env)
        log.close()  # the child has its own copy

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()  # SIGKILL
        self.proc.wait(30)

    def stop(self) -> int:
        """Graceful (SIGTERM); returns the exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)

    def log(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self._logs.glob(f"{self.name}-*.log")))


class ConsoleProcess:
    """`mailconsole --db DB` in a detached tmux session (its own tmux server, ended at close)."""

    def __init__(self, db: Path, port: int, logs: Path) -> None:
        if shutil.which("tmux") is None:
            raise RuntimeError("tmux is not installed")
        self.name = "console"
        self._socket = f"mc-reliability-{secrets.token_hex(4)}"
        self._db, self._port, self._logs = db, port, logs
        self.starts = 0
        self.pid = 0

    def _tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self._socket, "-f", "/dev/null", *args],
                              check=True, capture_output=True, text=True).stdout

    def start(self) -> None:
        if not self.starts:
            # Keep the tmux server when its only session dies (a killed console): a
            # new session right after would otherwise race with the server's exit.
            self._tmux("start-server", ";", "set-option", "-g", "exit-empty", "off")
        self.starts += 1
        # Textual draws on stderr: it must stay the terminal.
        command = (
            f"exec env TEXTUAL_ANIMATIONS=none MAILCONSOLE_TRANSPORT=smtp://127.0.0.1:{self._port} "
            f"{MAILCONSOLE} --db {self._db}"
        )
        self._tmux("new-session", "-d", "-s", f"c{self.starts}", "-x", "160", "-y", "48", command)
        self.pid = int(self._tmux("list-panes", "-t", f"c{self.starts}", "-F", "#{pane_pid}").split()[0])

    def kill9(self) -> None:
        os.kill(self.pid, signal.SIGKILL)

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", f"c{self.starts}")

    def stop(self) -> int:
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        return 0

    def log(self) -> str:
        """What the console shows now (it has no log of its own)."""
        try:
            return self.screen()
        except subprocess.CalledProcessError:
            return ""

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self._socket, "kill-server"], capture_output=True)
