"""Numbered schema migrations, one module each (``mNNN_<what>.py`` exporting ``SQL``).

A released migration is never edited: a change to the schema is a new module appended to
``ORDER``. Each feature owns its own migration module so features can evolve independently.
"""
