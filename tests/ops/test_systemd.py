"""contrib/systemd: the units parse, carry their hardening, and `systemd-analyze verify` accepts them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mailconsole.cli.ops_options import SERVICE_NOTIFY_FLUSH
from mailconsole.engine.config import _BOUNDS

UNITS = Path(__file__).resolve().parents[2] / "contrib" / "systemd"
SERVE, AGENT = UNITS / "mailconsole-serve.service", UNITS / "mailconsole-relay-agent.service"
STORE_DIR = "/var/lib/mailconsole"


def parse(path: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file as systemd reads it: sections of keys, each with every value given (in order)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        assert sep and current is not None, f"{path.name}: not a key=value line: {raw!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def one(unit: dict, section: str, key: str) -> str:
    values = unit[section].get(key)
    assert values and len(values) == 1, (section, key, values)
    return values[0]


def seconds(text: str) -> float:
    return float(text.removesuffix("s"))


@pytest.mark.parametrize("path", [SERVE, AGENT], ids=lambda p: p.name)
def test_both_units_are_hardened_restarted_and_configured_from_a_file(path):
    unit = parse(path)
    service = unit["Service"]
    assert one(unit, "Service", "NoNewPrivileges") == "yes"
    assert one(unit, "Service", "ProtectSystem") == "strict"
    assert STORE_DIR in one(unit, "Service", "ReadWritePaths").split()
    # The default store lies inside what may be written.
    assert any(v.startswith(f"MAILCONSOLE_DB=sqlite:///{STORE_DIR}/") for v in service["Environment"])
    assert one(unit, "Service", "Restart") == "on-failure"
    assert one(unit, "Service", "EnvironmentFile").lstrip("-").startswith("/etc/mailconsole/")
    assert one(unit, "Service", "KillSignal") == "SIGTERM"
    assert "--log-format json" in one(unit, "Service", "ExecStart")
    assert one(unit, "Install", "WantedBy") == "multi-user.target"


def test_the_engine_runs_as_its_own_user_and_outwaits_its_graceful_shutdown():
    unit = parse(SERVE)
    assert one(unit, "Service", "User") == one(unit, "Service", "Group") == "mailconsole"
    assert one(unit, "Service", "CapabilityBoundingSet") == ""  # no capability at all
    assert " serve " in one(unit, "Service", "ExecStart")
    # The longest graceful shutdown the engine allows, plus the notifications' last second.
    longest = _BOUNDS["shutdown_grace"][1] + SERVICE_NOTIFY_FLUSH
    assert seconds(one(unit, "Service", "TimeoutStopSec")) > longest + 5


def test_the_relay_agent_runs_as_root_with_postfix_queue_access_only():
    unit = parse(AGENT)
    assert "User" not in unit["Service"]  # postsuper refuses anyone but root
    assert "postsuper" in AGENT.read_text()  # and the unit says why
    assert "/var/spool/postfix" in one(unit, "Service", "ReadWritePaths").split()
    caps = set(one(unit, "Service", "CapabilityBoundingSet").split())
    assert caps and "CAP_SYS_ADMIN" not in caps and "CAP_NET_ADMIN" not in caps
    assert "relay-agent --postfix" in one(unit, "Service", "ExecStart")
    assert seconds(one(unit, "Service", "TimeoutStopSec")) > SERVICE_NOTIFY_FLUSH + 5


@pytest.mark.parametrize("path", [SERVE, AGENT], ids=lambda p: p.name)
def test_systemd_analyze_verifies_the_unit(path, tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (scripts/install-system-deps.sh installs it)")
    # The unit names the installed program; here it is this environment's.
    program = Path(sys.executable).with_name("mailconsole")
    copy = tmp_path / path.name
    copy.write_text(path.read_text().replace("/usr/local/bin/mailconsole", str(program)))
    r = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and path.name not in r.stderr, r.stderr
