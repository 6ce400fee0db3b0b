"""Reliability suite: the engine tests' real-clock store and SMTP servers, plus process helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.conftest import smtpd_factory, store  # noqa: F401  (fixtures shared with the engine tests)


@pytest.fixture
def engine_toml(tmp_path: Path):
    """Write an engine TOML file: short leases and fast retries, so recovery happens within a test."""

    def write(**changes: object) -> Path:
        settings = {
            "workers": 4, "lease_seconds": 2.0, "maintenance_interval": 0.2, "idle_claim_interval": 0.02,
            "heartbeat_interval": 0.2, "retry_base": 0.05, "retry_max": 0.2, "shutdown_grace": 2.0,
            "max_attempts": 20, **changes,
        }
        path = tmp_path / f"engine-{len(list(tmp_path.glob('engine-*.toml')))}.toml"
        path.write_text("[engine]\n" + "".join(f"{k} = {v!r}\n" for k, v in settings.items()), encoding="utf-8")
        return path

    return write
