"""`mailconsole demo` never deletes a demo store another demo is using, and leaves no temporary files.

Real processes: the default demo store lives under XDG_DATA_HOME, which each
test points into its own directory; one process holds the demo lock (as a
running demo does) while a second `mailconsole demo` is started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mailconsole.store import Store, mailings

pytestmark = pytest.mark.slow  # each demo seeds 60,000 contacts in a process of its own

HOLD = """
import sys
from mailconsole.demo import default_demo_path, demo_lock
from mailconsole.store import Store
with demo_lock(default_demo_path()):
    store = Store(str(default_demo_path()), create=False)
    print("holding", flush=True)
    sys.stdin.read()
"""


def _env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "TMPDIR": str(tmp_path / "tmp")}


def _demo(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mailconsole", "demo", "--seed-only"], env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)


def _demo_store(tmp_path: Path) -> Path:
    return tmp_path / "data" / "mailconsole" / "demo.db"


def test_a_second_demo_is_refused_while_one_runs_and_the_store_stays(tmp_path: Path) -> None:
    env = _env(tmp_path)
    first = _demo(env)
    assert first.returncode == 0, first.stderr
    db = _demo_store(tmp_path)
    inode, names = db.stat().st_ino, sorted(m.name for m in mailings.list_mailings(Store(str(db)), planned=True))
    assert len(names) == 4

    holder = subprocess.Popen([sys.executable, "-c", HOLD], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        second = _demo(env)
        assert second.returncode == 1
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and "in use by another `mailconsole demo`" in lines[0] and str(holder.pid) in lines[0]
        assert db.stat().st_ino == inode
        assert sorted(m.name for m in mailings.list_mailings(Store(str(db)), planned=True)) == names
    finally:
        holder.send_signal(signal.SIGKILL)  # however a demo ends, the kernel releases its lock
        holder.wait(10)
    again = _demo(env)
    assert again.returncode == 0, again.stderr


def test_the_demo_leaves_no_temporary_files(tmp_path: Path) -> None:
    env = _env(tmp_path)
    done = _demo(env)
    assert done.returncode == 0, done.stderr
    assert list((tmp_path / "tmp").iterdir()) == []
