"""Console test fixtures: a fixed store, a deterministic app, snapshots in the top-level folder."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from syrupy import SnapshotAssertion
from syrupy.extensions.amber import AmberSnapshotExtension
from syrupy.location import PyTestLocation

from mailconsole.console.app import MailConsole
from mailconsole.store import Store

from .builder import FIXED, OPERATOR, build

os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")

HOST = "ops-1.example.net"
STORE_LABEL = "/var/lib/mailconsole/production/mailconsole.db"
SNAPSHOTS = Path(__file__).resolve().parents[2] / "snapshots"


class TopLevelSnapshots(SnapshotAssertion):
    """pytest-textual-snapshot picks its SVG extension itself; move where it stores files."""

    def use_extension(self, extension_class=None):  # type: ignore[no-untyped-def]
        if extension_class is None:
            return super().use_extension(extension_class)

        class Here(extension_class):  # type: ignore[misc, valid-type]
            @classmethod
            def dirname(cls, *, test_location: PyTestLocation) -> str:
                return str(SNAPSHOTS / Path(test_location.filepath).stem)

        return super().use_extension(Here)


@pytest.fixture
def snapshot(request: pytest.FixtureRequest) -> SnapshotAssertion:
    return TopLevelSnapshots(
        update_snapshots=request.config.option.update_snapshots,
        extension_class=AmberSnapshotExtension,
        test_location=PyTestLocation(request.node),
        session=request.session.config._syrupy,  # type: ignore[attr-defined]
    )


@pytest.fixture
def make_store(tmp_path: Path) -> Callable[..., Store]:
    def make(stopped: bool = False) -> Store:
        return build(tmp_path / "store.db", stopped=stopped)

    return make


@pytest.fixture
def make_app(make_store: Callable[..., Store]) -> Callable[..., MailConsole]:
    """An app on the fixed store with a frozen clock and no polling: the same screen every run."""

    def make(stopped: bool = False, **kwargs: object) -> MailConsole:
        kwargs.setdefault("poll_interval", None)
        # The header names the store and the host: fixed here, so that snapshots do not vary.
        kwargs.setdefault("host", HOST)
        kwargs.setdefault("store_label", STORE_LABEL)
        return MailConsole(make_store(stopped), clock=lambda: FIXED, actor=OPERATOR, **kwargs)  # type: ignore[arg-type]

    return make
