"""The store's own id: random, made once when the store is created, never changed.

It makes Message-IDs unique across stores: a re-created store, or a second
installation sending for the same domain, numbers its messages from 1 again,
and a receiving system that de-duplicates by Message-ID would otherwise drop a
different message that happens to reuse an id.
"""

from __future__ import annotations

import base64
import secrets

from sqlalchemy import Connection, select

from .schema import meta

KEY = "store_id"


def new_store_id() -> str:
    """128 random bits in lower-case base32 without padding: 26 characters valid in a Message-ID."""
    return base64.b32encode(secrets.token_bytes(16)).decode("ascii").rstrip("=").lower()


def read_store_id(conn: Connection) -> str:
    """The store's id ("" for a store that has none, which `migrate` gives one)."""
    return conn.execute(select(meta.c.value).where(meta.c.key == KEY)).scalar() or ""
