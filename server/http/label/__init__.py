"""``/label``: the labelling page for domain experts (server-rendered, one token per reviewer).

``app.py`` builds the Starlette app and ``mount.py`` puts it beside the MCP endpoint; ``auth.py``
turns a reviewer token (cookie or bearer header) into a ``Reviewer`` and checks CSRF tokens;
``routes.py`` holds the pages; ``templates/`` and ``static/`` are served from this package only.
"""
