"""The store's Alembic migrations: env.py and one revision per schema version in versions/.

Run them through mailconsole.store.migrate (`mailconsole migrate`); there is no
alembic.ini. Adding a schema version N:

1. change store/schema.py and set SCHEMA_VERSION = N;
2. add versions/NNNN_<what>.py with revision = "NNNN" (schema.revision_of(N)),
   down_revision the previous one, whose upgrade() ends with set_schema_version(N)
   and whose downgrade() undoes it;
3. keep it backend-neutral (op.* and batch_alter_table, no SQLite-only SQL). On
   SQLite, batch mode copies a whole table for what ALTER TABLE cannot do (drop or
   change a column): that holds the write lock for as long as the copy takes, so
   prefer additive changes. Recreating a table that others reference (accounts,
   mailings) also needs SQLite's foreign keys off, which cannot change inside the
   migration's transaction. A data step (filling a new column, say) does not belong
   in a revision, which runs in the migration's single transaction: the revision
   adds the column, and the data is filled in short batches of their own.
   `mailconsole migrate` refuses while an engine is live, and the store stays
   refused by every other command until the last revision has committed.

A draft of a revision can be generated against a store at the previous version with
`alembic.command.revision(mailconsole.store.migrate.alembic_config(connection),
message, autogenerate=True, rev_id="NNNN")`.
"""
