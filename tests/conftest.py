"""Shared fixtures: a real SQLite store in a temporary directory with a clock the test drives."""

from __future__ import annotations

from pathlib import Path

import pytest

from csvfiles import write_csv
from mailconsole.store import Store

# A fixed, round "now" so due times and the 7-day rule are exact in tests.
T0 = 1_700_000_000.0


class FakeClock:
    """A clock that only moves when the test moves it."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def store(db_path: Path, clock: FakeClock):
    s = Store(str(db_path), clock=clock)
    yield s
    s.close()


@pytest.fixture
def csv_file(tmp_path: Path):
    """write_csv bound to a fresh file name in tmp_path."""
    counter = iter(range(1_000_000))

    def make(rows, header=None, name: str | None = None) -> Path:
        return write_csv(tmp_path / (name or f"recipients-{next(counter)}.csv"), rows, header)

    return make
