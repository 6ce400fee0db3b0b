"""Alembic's entry point, run by mailconsole.store.migrate, never by the alembic command.

The caller passes its connection in config.attributes["connection"], already in
its write transaction (BEGIN IMMEDIATE on SQLite): the engines' liveness check,
every revision and the new meta.schema_version commit together or not at all.
Alembic sees the open transaction and does not begin or commit one of its own.
"""

from __future__ import annotations

from alembic import context

from mailconsole.store import schema

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("the store's migrations run through `mailconsole migrate` (mailconsole.store.migrate)")

context.configure(
    connection=connection,
    target_metadata=schema.metadata,
    # SQLite cannot ALTER most things: batch mode recreates a table when it must and
    # emits plain ALTER TABLE elsewhere (and for ADD COLUMN on SQLite too).
    render_as_batch=True,
)
with context.begin_transaction():
    context.run_migrations()
