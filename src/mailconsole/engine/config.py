"""Engine configuration: one dataclass, filled from flags > environment > TOML file.

The SMTP password is part of the configuration but never of anything the engine
shows: `masked_transport` is what heartbeats, logs and errors carry.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

ENV_TRANSPORT = "MAILCONSOLE_TRANSPORT"
ENV_PASSWORD = "MAILCONSOLE_SMTP_PASSWORD"


class ConfigError(ValueError):
    """A configuration value that cannot work; the message says which and why."""


@dataclass
class EngineConfig:
    transport: str = "null:"  # smtp://host:port?starttls=..., smtps://, maildir:PATH, null:
    workers: int = 8  # sender tasks, each holding one reused connection
    rate: float | None = None  # messages/s cap for this engine
    batch: int = 100  # messages per claim statement
    lease_seconds: float = 30.0  # a claim survives this long without renewal
    max_attempts: int = 5  # then a temporary failure becomes final
    retry_base: float = 30.0  # first retry delay (s); doubles per attempt, with jitter
    retry_max: float = 3600.0
    password: str | None = field(default=None, repr=False)  # SMTP AUTH; env/TOML/URL
    helo_name: str | None = None  # EHLO name (default: this host's FQDN)
    connect_timeout: float = 10.0
    command_timeout: float = 60.0  # per SMTP reply
    data_timeout: float = 120.0  # for writing a body and reading the final reply
    poll_interval: float = 0.01  # how often an idle engine re-reads the stop state (s)
    idle_claim_interval: float = 0.2  # how often an engine with nothing to do tries to claim
    heartbeat_interval: float = 0.5
    maintenance_interval: float = 2.0  # promote planned, expire leases, purge deleted
    result_flush: float = 0.02  # least time between two result-recording transactions (s)
    # On shutdown, how long a message whose dot is written may wait for the server's
    # reply; transactions before their dot are cut at once. At most 4 s (see _BOUNDS).
    shutdown_grace: float = 2.5
    message_domain: str | None = None  # Message-ID domain (default: the sender's)
    # DKIM signing (engine/dkim_signing.py): all three or none. The key file's path
    # may be shown; the key itself never is.
    dkim_key_file: str | None = None
    dkim_selector: str | None = None
    dkim_domain: str | None = None
    # At most this many of our messages waiting at the relay (engine/backlog.py): bounds
    # what a stop has to hold there. Needs a relay agent; None: no limit.
    relay_backlog: int | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            _check(f.name, f.type, getattr(self, f.name))
        # Leases are renewed every third of a lease, at a beat (1e-9: 3 * 0.2 is not 0.6 in floats).
        if self.lease_seconds < 3 * self.heartbeat_interval - 1e-9:
            raise ConfigError(f"lease_seconds must be at least 3 heartbeat intervals ({3 * self.heartbeat_interval:g} s; "
                              f"got {self.lease_seconds:g})")

    @property
    def masked_transport(self) -> str:
        return mask_transport(self.transport)

    def __repr__(self) -> str:  # the transport URL may carry a password
        shown = ", ".join(
            f"{f.name}={mask_transport(self.transport)!r}" if f.name == "transport" else f"{f.name}={getattr(self, f.name)!r}"
            for f in fields(self)
            if f.repr
        )
        return f"EngineConfig({shown})"


def mask_transport(url: str) -> str:
    """The transport URL with any password replaced by `***`."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = quote(unquote(parts.username or ""), safe="")
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


# The numeric settings' ranges (inclusive), checked for every source alike: a value
# outside them cannot work or would keep the engine from answering in time (a
# thousand workers is already more connections than a relay usually allows; a
# shutdown grace over 4 s would break `serve`'s promise to exit within 5 s of SIGTERM).
_BOUNDS: dict[str, tuple[float, float]] = {
    "workers": (1, 1000),
    "rate": (0.001, 1_000_000),
    "batch": (1, 1000),  # one claim of 1,000 holds the write lock ~20 ms; a stop waits for it
    "max_attempts": (1, 1000),
    "shutdown_grace": (0, 4),
    "result_flush": (0, 1),
    "poll_interval": (0.001, 1),  # an idle engine's acknowledgement of a stop waits up to this long
    "heartbeat_interval": (0.01, 2.5),  # an engine silent for 5 s is shown as gone
    "relay_backlog": (1, 100_000_000),
}
# Every other number: a positive, finite time in seconds (at most about 30 years).
_TIME: tuple[float, float] = (0.001, 1_000_000_000)


def _check(name: str, annotation: object, value: object) -> None:
    """Raise ConfigError unless `value` fits the field's type and range."""
    kind = str(annotation)
    if value is None and "None" in kind:
        return
    if kind.startswith("str"):
        if not isinstance(value, str):
            raise ConfigError(f"{name} must be a string (got {value!r})")
        return
    if kind.startswith("int"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name} must be a whole number (got {value!r})")
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name} must be a number (got {value!r})")
    low, high = _BOUNDS.get(name, _TIME)
    if not math.isfinite(value) or not low <= value <= high:
        raise ConfigError(f"{name} must be between {_shown(low)} and {_shown(high)} (got {value!r})")


def _shown(bound: float) -> str:
    return f"{bound:,}" if isinstance(bound, int) else f"{bound:g}"


_NAMES = {f.name for f in fields(EngineConfig)}


def load_config(
    *,
    flags: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    toml_path: str | Path | None = None,
) -> EngineConfig:
    """Merge the sources: flags (None = not given) > environment > TOML > defaults."""
    values: dict[str, Any] = {}
    if toml_path is not None:
        path = Path(toml_path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"configuration file {path} does not exist") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"configuration file {path} is not valid TOML: {exc}") from None
        section = data.get("engine", data)  # an [engine] table, or top-level keys
        if not isinstance(section, dict):
            raise ConfigError(f"configuration file {path}: engine must be a table ([engine])")
        unknown = sorted(set(section) - _NAMES)
        if unknown:
            raise ConfigError(f"configuration file {path}: unknown key(s) {', '.join(unknown)}")
        values.update(section)
    env = os.environ if env is None else env
    if env.get(ENV_TRANSPORT):
        values["transport"] = env[ENV_TRANSPORT]
    if env.get(ENV_PASSWORD):
        values["password"] = env[ENV_PASSWORD]
    values.update({k: v for k, v in (flags or {}).items() if v is not None})
    try:
        return EngineConfig(**values)
    except TypeError as exc:  # a wrong type from TOML
        raise ConfigError(f"configuration: {exc}") from None


def with_overrides(config: EngineConfig, **changes: Any) -> EngineConfig:
    return replace(config, **changes)
