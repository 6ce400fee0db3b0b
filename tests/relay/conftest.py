"""Relay fixtures: a private Postfix relaying to a recording next hop.

Skipped (with the reason) only where Postfix cannot run: not installed, or not
root. In CI (`CI` set) that is a failure instead: there it must run.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from postfix import NextHop, NextHopServer, PrivatePostfix, unavailable  # noqa: E402


def _require_postfix() -> None:
    why = unavailable()
    if why is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the relay tests: {why}")
    pytest.skip(why)


@pytest.fixture
def next_hop() -> Iterator[NextHop]:
    hop = NextHop()
    server = NextHopServer(hop)
    server.start()
    hop.port = server.port  # type: ignore[attr-defined]
    yield hop
    server.stop()


@pytest.fixture
def postfix(next_hop: NextHop) -> Iterator[PrivatePostfix]:
    """A started private Postfix relaying to `next_hop` (its delays and refusals set by the test)."""
    _require_postfix()
    # Not under pytest's tmp_path: the postfix user must traverse every directory
    # above the queue, and a short path keeps the master's UNIX sockets within limits.
    base = Path(tempfile.mkdtemp(prefix="mc-postfix-"))
    relay = PrivatePostfix(base, next_hop.port)  # type: ignore[attr-defined]
    try:
        relay.start()
        yield relay
    finally:
        relay.cleanup()


@pytest.fixture
def scenario(tmp_path: Path, postfix: PrivatePostfix):  # type: ignore[no-untyped-def]
    from scenario import Scenario

    s = Scenario(tmp_path, postfix)
    yield s
    s.close()
