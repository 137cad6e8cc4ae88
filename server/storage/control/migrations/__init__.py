"""The control plane's schema, one module per migration: ``cNNN_<what>.py`` with ``upgrade(op)``.

``op`` is Alembic's ``Operations`` on the migrating connection, so the DDL is written once for
SQLite and PostgreSQL. ``server.storage.control.migrate`` discovers the modules by name, applies
the missing ones in name order and records each in ``control_migrations``. Never edit a released
migration; add one.
"""
