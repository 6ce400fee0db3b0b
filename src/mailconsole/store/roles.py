"""Least privilege on PostgreSQL: the engine, operator and viewer roles, as SQL.

Three group roles (NOLOGIN); the people and hosts log in as roles that are members
of one of them (`CREATE ROLE host1 LOGIN IN ROLE mailconsole_engine`):

- engine: what `serve` and `relay-agent` write and nothing else: claim, record,
  lease and heartbeat. It reads every table but may update only the columns the
  queue moves (messages' state, lease and outcome; the mailings' counters and
  revisions' sent count), its own rows in engines and relays, and delete the unsent
  messages of deleted mailings (the purge). It cannot change the stop state
  (accounts), the templates (revisions), the mailings' definitions, the audit trail
  or the suppression list; and a guard trigger lets it move a mailing's status only
  the way an engine does (planned -> sending, sending -> sent or failed), so it
  cannot undo a pause or a delete either.
- operator: everything the commands and the console do (all rows of all tables).
- viewer: reads only: a console with --read-only on a store it could not change anyway.

The SQL is generated from the store's schema, so a new table is either granted
here on purpose (ENGINE_GRANTS) or refused to the engine; it is idempotent (roles
created if missing, every grant of the three roles revoked and given again), so it
is run again after each `mailconsole migrate`. It is applied by the owner of the
tables (who ran `mailconsole init`): creating roles also needs CREATEROLE.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from . import backends, schema
from .errors import StoreError

DEFAULT_PREFIX = "mailconsole"
ROLE_KINDS = ("engine", "operator", "viewer")
# Role names are the prefix plus "_engine" etc.: plain lower-case identifiers, so
# they need no quoting in the SQL an operator reads, and stay under PostgreSQL's 63 bytes.
_PREFIX = re.compile(r"[a-z_][a-z0-9_]{0,40}")

# What the engine role may do beyond SELECT, per table: "insert", "delete", and the
# columns it may UPDATE ("*": all). A table not named here is read only for it; the
# tests require every table to be named, so that a new one is a decision.
ENGINE_GRANTS: dict[str, dict[str, object]] = {
    "meta": {},
    "accounts": {},  # the stop state: never
    "mailings": {
        # The counters the claim and the outcomes move, and the status the guard
        # below allows: promote_due (planned -> sending) and finishing (-> sent, failed).
        "update": ("queued", "claimed", "sent", "failed", "suspended", "recovered", "suppressed", "status"),
    },
    "revisions": {"update": ("sent",)},  # the templates: only their sent counter
    "messages": {
        "update": (
            "state", "due_at", "attempts", "lease_owner", "lease_expires", "last_error", "sent_at",
            "revision_id", "recovered", "fail_kind",
            "relay", "relay_queue_id", "relay_state", "relay_at", "relay_note",
        ),
        "delete": True,  # purge_deleted: the unsent messages of deleted mailings
    },
    "suppressions": {},
    "engines": {"insert": True, "update": "*", "delete": True},  # heartbeats
    "relays": {"insert": True, "update": "*", "delete": True},  # relay agents' heartbeats
    "audit": {"select": False},  # the engine neither reads nor writes the audit trail
}

# The status moves an engine makes (store/queue.py, suppressions.leave_queue); any
# other change of status (pause, unpause, delete) needs UPDATE on scheduled_at,
# which only operators have. Role-agnostic: it asks what the current role may do.
GUARD = "mailconsole_mailing_status_guard"
_GUARD_SQL = f"""CREATE OR REPLACE FUNCTION {GUARD}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.status IS DISTINCT FROM OLD.status
     AND NOT has_column_privilege(TG_RELID, 'scheduled_at', 'UPDATE')
     AND NOT ((OLD.status = 'planned' AND NEW.status IN ('sending', 'sent', 'failed'))
              OR (OLD.status = 'sending' AND NEW.status IN ('sent', 'failed'))) THEN
    RAISE EXCEPTION 'permission denied: % may not move mailing % from % to %',
      current_user, OLD.id, OLD.status, NEW.status USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS {GUARD} ON mailings;
CREATE TRIGGER {GUARD} BEFORE UPDATE OF status ON mailings
  FOR EACH ROW EXECUTE FUNCTION {GUARD}();"""


@dataclass(frozen=True)
class Roles:
    engine: str
    operator: str
    viewer: str

    def all(self) -> tuple[str, str, str]:
        return (self.engine, self.operator, self.viewer)


def role_names(prefix: str = DEFAULT_PREFIX) -> Roles:
    """The three role names for `prefix`; StoreError if it is not a plain identifier."""
    if not _PREFIX.fullmatch(prefix):
        raise StoreError(
            f"role prefix {prefix!r} is not a plain name: lower-case letters, digits and _, "
            "not starting with a digit, at most 41 characters"
        )
    return Roles(*(f"{prefix}_{kind}" for kind in ROLE_KINDS))


def database_of(url: str) -> str:
    """The database a store URL's roles are granted on; StoreError for a store without roles."""
    return backends.for_url(url).roles_database()


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _tables() -> list[str]:
    return [t.name for t in schema.metadata.sorted_tables]


def roles_sql(database: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The SQL that creates the three roles (if missing) and sets exactly their grants."""
    roles = role_names(prefix)
    tables = _tables()
    everything = ", ".join(tables + [schema.alembic_version.name])
    db = _ident(database)
    lines = [
        f"-- mailconsole roles for database {db}, schema version {schema.SCHEMA_VERSION}.",
        "-- Run as the owner of the store's tables (who ran `mailconsole init`), with CREATEROLE;",
        "-- again after every `mailconsole migrate`. Logins are members of one role, e.g.:",
        f"--   CREATE ROLE engine_host1 LOGIN IN ROLE {roles.engine};  then \\password engine_host1",
        "BEGIN;",
    ]
    for role in roles.all():
        lines.append(
            f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {_literal(role)}) "
            f"THEN CREATE ROLE {role} NOLOGIN; END IF; END $$;"
        )
    for role in roles.all():
        lines += [
            f"GRANT CONNECT ON DATABASE {db} TO {role};",
            f"DO $$ BEGIN EXECUTE format('GRANT USAGE ON SCHEMA %I TO {role}', current_schema()); END $$;",
            # Start from nothing: what an earlier version granted and this one does not is gone.
            f"REVOKE ALL ON {everything} FROM {role};",
            f"DO $$ BEGIN EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA %I FROM {role}', "
            "current_schema()); END $$;",
        ]
    # operator: all rows of all tables; the ids of new rows come from their sequences.
    lines += [
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(tables)} TO {roles.operator};",
        f"GRANT SELECT ON {schema.alembic_version.name} TO {roles.operator};",
        f"DO $$ BEGIN EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO {roles.operator}', "
        "current_schema()); END $$;",
    ]
    # viewer: reads only.
    lines.append(f"GRANT SELECT ON {everything} TO {roles.viewer};")
    # engine: reads all it needs, writes what ENGINE_GRANTS lists.
    readable = [t for t in tables if ENGINE_GRANTS.get(t, {}).get("select", True)] + [schema.alembic_version.name]
    lines.append(f"GRANT SELECT ON {', '.join(readable)} TO {roles.engine};")
    for table in tables:
        grants = ENGINE_GRANTS.get(table, {})  # a table not named there: read only
        columns = grants.get("update")
        whole = [name for name, given in (("INSERT", grants.get("insert")), ("UPDATE", columns == "*"),
                                          ("DELETE", grants.get("delete"))) if given]
        if whole:
            lines.append(f"GRANT {', '.join(whole)} ON {table} TO {roles.engine};")
        if columns and columns != "*":
            lines.append(f"GRANT UPDATE ({', '.join(columns)}) ON {table} TO {roles.engine};")  # type: ignore[arg-type]
    lines += [_GUARD_SQL, "COMMIT;"]
    return "\n".join(lines) + "\n"


def apply(url: str, prefix: str = DEFAULT_PREFIX) -> Roles:
    """Run roles_sql on the store at `url` in one transaction; StoreError (one line) if refused."""
    database = database_of(url)
    sql = roles_sql(database, prefix)
    backend = backends.for_url(url)
    engine = create_engine(url)
    try:
        raw = engine.raw_connection()
        try:
            driver = raw.driver_connection
            _check_schema(driver, url)  # type: ignore[arg-type]
            # The script is a sequence of statements: sent as one simple query, its own
            # BEGIN ... COMMIT makes it all or nothing (autocommit: no driver transaction around it).
            driver.autocommit = True  # type: ignore[union-attr]
            driver.execute(sql)  # type: ignore[union-attr]
        finally:
            raw.invalidate()  # not back to the pool: it is disposed of below
    except DBAPIError as exc:
        raise StoreError(f"roles not applied (nothing changed): {_first_line(exc)}") from None
    except Exception as exc:
        if not backend.is_driver_error(exc):  # raw connections raise the driver's errors unwrapped
            raise
        raise StoreError(f"roles not applied (nothing changed): {str(exc).splitlines()[0]}") from None
    finally:
        engine.dispose()
    return role_names(prefix)


def _check_schema(conn, url: str) -> None:  # type: ignore[no-untyped-def]
    """Grants name this version's tables and columns: the store must be at its schema."""
    shown = make_url(url).render_as_string(hide_password=True)
    row = conn.execute("SELECT to_regclass('meta') IS NOT NULL").fetchone()
    if not row[0]:
        raise StoreError(f"{shown} holds no mailconsole store; create one with `mailconsole init` first")
    version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    conn.rollback()
    if version is None or version[0] != str(schema.SCHEMA_VERSION):
        found = version[0] if version else "none"
        raise StoreError(
            f"store {shown} has schema version {found}, this mailconsole's is {schema.SCHEMA_VERSION}: "
            "run `mailconsole migrate` first (roles not applied, nothing changed)"
        )


def _first_line(exc: DBAPIError) -> str:
    return (str(exc.orig) or type(exc.orig).__name__).splitlines()[0]


__all__ = ["DEFAULT_PREFIX", "ENGINE_GRANTS", "Roles", "apply", "database_of", "role_names", "roles_sql"]
