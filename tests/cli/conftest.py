from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from store_backend import store_location
from mailconsole.cli import main


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return store_location(request, tmp_path)


@pytest.fixture
def cli(db: str, capsys: pytest.CaptureFixture[str]):
    """Run `mailconsole --db DB ARGS…` in-process; returns exit code and output."""

    def run(*args: str) -> Result:
        code = main(["--db", db, *args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def cli_process(db: str):
    """Run the real `mailconsole` entry point in a subprocess with no terminal on stdin."""

    def run(*args: str, env: dict[str, str] | None = None) -> Result:
        proc = subprocess.run(
            [sys.executable, "-m", "mailconsole", "--db", db, *args],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
            env={**os.environ, **(env or {})},
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    return run


@pytest.fixture
def files(tmp_path: Path):
    """Write recipient CSVs and template files."""

    def write(name: str, text: str, encoding: str = "utf-8") -> Path:
        path = tmp_path / name
        path.write_bytes(text.encode(encoding))
        return path

    return write


@pytest.fixture
def mailing(cli, files):
    """Create a small sending mailing; returns its id."""

    def create(rows: int = 5, *extra: str) -> int:
        csv = files("r.csv", "email,first_name\n" + "".join(f"u{i}@example.com,N{i}\n" for i in range(rows)))
        body = files("body.txt", "Hello {{ first_name }}\n")
        r = cli("create", "--name", "Test", "--from", "news@example.com", "--subject", "Hi {{ first_name }}",
                "--body-file", str(body), "--recipients", str(csv), *extra)
        assert r.code == 0, r.err
        return int(r.out.strip())

    return create
