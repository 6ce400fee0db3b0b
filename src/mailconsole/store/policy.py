"""The store's sending policy: when the engine pauses a mailing (or stops an account) by itself.

One policy per store, kept as one JSON value in the key/value table (no schema
change: a store without it has the defaults). Engines read it at start and at
each maintenance round, so a change applies within seconds everywhere.

The thresholds judge a sliding window of recent outcomes (engine/watch.py):
a share of permanent refusals (5xx), of bounces the relay agent reports, or of
deferrals (4xx), above which the mailing is paused. The account-wide window
covers all of an account's mailings and stops the account. Nothing is judged
before a window holds `min_outcomes`: a few early refusals are not a rate.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace

from sqlalchemy import Connection, insert, select, update

from . import audit
from .actor import Actor
from .connection import Store
from .errors import InvalidInput
from .schema import meta

META_KEY = "policy"
OFF = None  # a threshold set to "off"

WINDOW_LIMITS = (10, 100_000)


@dataclass(frozen=True)
class Policy:
    """Rates are percentages of the window's outcomes; None: that threshold is off."""

    auto_pause: bool = True
    window: int = 200
    min_outcomes: int = 100
    max_permanent: float | None = 10.0
    max_bounced: float | None = 10.0
    max_deferred: float | None = 30.0
    auto_stop: bool = True
    account_window: int = 1000
    account_min_outcomes: int = 300
    account_max_permanent: float | None = 15.0
    account_max_bounced: float | None = 15.0
    account_max_deferred: float | None = 50.0
    suppress_bounces: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


KEYS = tuple(f.name for f in fields(Policy))
_BOOLS = {"auto_pause", "auto_stop", "suppress_bounces"}
_COUNTS = {"window", "min_outcomes", "account_window", "account_min_outcomes"}
HELP = {
    "auto_pause": "pause a mailing by itself past a threshold",
    "window": "a mailing's window: its last N outcomes",
    "min_outcomes": "outcomes a mailing's window holds before it judges",
    "max_permanent": "% permanent refusals (5xx) that pauses the mailing",
    "max_bounced": "% bounces reported by a relay agent that pauses the mailing",
    "max_deferred": "% deferrals (4xx) that pauses the mailing",
    "auto_stop": "stop the account by itself past an account-wide threshold",
    "account_window": "the account's window: its last N outcomes, all mailings",
    "account_min_outcomes": "outcomes the account's window holds before it judges",
    "account_max_permanent": "% permanent refusals (5xx) that stops the account",
    "account_max_bounced": "% relay bounces that stops the account",
    "account_max_deferred": "% deferrals (4xx) that stops the account",
    "suppress_bounces": "a relay's hard bounce (5.x.x) suppresses the address",
}


def _parse_bool(key: str, text: str) -> bool:
    word = text.strip().lower()
    if word in ("on", "yes", "true", "1"):
        return True
    if word in ("off", "no", "false", "0"):
        return False
    raise InvalidInput(f"{key}: {text!r} is not on or off")


def _parse_count(key: str, text: str) -> int:
    try:
        n = int(text.strip().replace("_", "").replace(",", ""))
    except ValueError:
        raise InvalidInput(f"{key}: {text!r} is not a whole number") from None
    lo, hi = WINDOW_LIMITS
    if not lo <= n <= hi:
        raise InvalidInput(f"{key}: {n} is outside {lo}..{hi:,}")
    return n


def _parse_rate(key: str, text: str) -> float | None:
    word = text.strip().lower().rstrip("%").strip()
    if word in ("off", "none"):
        return OFF
    try:
        rate = float(word)
    except ValueError:
        raise InvalidInput(f"{key}: {text!r} is not a percentage (e.g. 10 or 10%) or off") from None
    if not 0 < rate <= 100:
        raise InvalidInput(f"{key}: {rate:g}% is outside 0..100 (use off to turn it off)")
    return rate


def parse(current: Policy, changes: dict[str, str]) -> Policy:
    """`current` with `changes` (key -> text as typed) applied; InvalidInput names the first bad one."""
    values: dict[str, object] = {}
    for key, text in changes.items():
        name = key.strip().replace("-", "_")
        if name not in KEYS:
            raise InvalidInput(f"no policy setting named {key!r}; settings: {', '.join(KEYS)}")
        if name in _BOOLS:
            values[name] = _parse_bool(name, text)
        elif name in _COUNTS:
            values[name] = _parse_count(name, text)
        else:
            values[name] = _parse_rate(name, text)
    result = replace(current, **values)  # type: ignore[arg-type]
    for window, least in (("window", "min_outcomes"), ("account_window", "account_min_outcomes")):
        if getattr(result, least) > getattr(result, window):
            raise InvalidInput(f"{least} ({getattr(result, least)}) exceeds {window} ({getattr(result, window)})")
    return result


def read(conn: Connection) -> Policy:
    raw = conn.execute(select(meta.c.value).where(meta.c.key == META_KEY)).scalar()
    if raw is None:
        return Policy()
    try:
        stored = json.loads(raw)
    except ValueError:
        return Policy()  # unreadable: the defaults, which never fire on a healthy mailing
    return replace(Policy(), **{k: v for k, v in stored.items() if k in KEYS})


def get(store: Store) -> Policy:
    with store.read() as conn:
        return read(conn)


def describe(key: str, value: object) -> str:
    """A value as `policy show` prints it and `policy set` takes it."""
    if key in _BOOLS:
        return "on" if value else "off"
    if key in _COUNTS:
        return f"{value:,}"
    return "off" if value is None else f"{value:g}%"


def set_values(store: Store, actor: Actor, changes: dict[str, str], account: str = "default",
               ) -> tuple[Policy, dict[str, tuple[object, object]]]:
    """Apply `changes` (all checked first: one bad value changes nothing); audited.

    The policy is the store's; the audit entry goes to the account the operator
    acts in, so that its audit view shows the change.

    Returns the new policy and what changed (key -> (old, new)).
    """
    if not changes:
        raise InvalidInput("nothing to set; give KEY=VALUE, e.g. max_permanent=10%")
    with store.write() as conn:
        current = read(conn)
        new = parse(current, changes)
        changed = {k: (getattr(current, k), getattr(new, k)) for k in KEYS if getattr(current, k) != getattr(new, k)}
        if changed:
            value = json.dumps(new.as_dict(), sort_keys=True)
            if conn.execute(update(meta).where(meta.c.key == META_KEY).values(value=value)).rowcount == 0:
                conn.execute(insert(meta).values(key=META_KEY, value=value))
            audit.record(conn, store.now(), actor, account, "policy",
                         changed={k: [old, new_value] for k, (old, new_value) in changed.items()})
    return new, changed
