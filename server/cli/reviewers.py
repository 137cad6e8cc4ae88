"""``tracesieve reviewer add|list|revoke``: who may label on the ``/label`` page.

The operator makes one token per person; the page attributes every label to the token's
reviewer, so nobody types a name. The token is printed once and stored only as a hash.
"""

from __future__ import annotations

from typing import Any

import click

from server.cli.common import open_backend, store_option
from server.errors import cli_errors
from server.storage.urls import StoreUrl
from tools.clock import now_ms
from tools.labels.review import ROLES


@click.group("reviewer")
def reviewer_group() -> None:
    """Reviewers of the /label page (tracesieve serve --http): one token each.

    Example:

        tracesieve reviewer add ana@example.com --role lead
    """


def _reviewers(url: StoreUrl) -> Any:
    """The store's reviewers (``FeatureStores.reviewers``): in the DuckDB file, or in a ClickHouse
    store's control plane."""
    return open_backend(url).require_features("Reviewers", "reviewers").reviewers


@reviewer_group.command("add")
@store_option
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), default="reviewer", show_default=True,
              help="'lead' may also reveal redacted fields (logged) and correct other reviewers' labels.")
def add_cmd(db: StoreUrl, name: str, role: str) -> None:
    """Create reviewer NAME and print their token (shown once; only a hash is stored).

    Example:

        tracesieve reviewer add ana@example.com
    """
    with cli_errors():
        token = _reviewers(db).add(name, role, now_ms=now_ms())
    click.echo(token)
    click.echo(f"Give this token to {name}: they sign in at http://HOST:PORT/label with it. It is not shown again.",
               err=True)


@reviewer_group.command("list")
@store_option
def list_cmd(db: StoreUrl) -> None:
    """List reviewers (names, roles, revoked or not; never tokens).

    Example:

        tracesieve reviewer list
    """
    with cli_errors():
        rows = _reviewers(db).list()
    for r in rows:
        click.echo(f"{r.name}\t{r.role}\t{'revoked' if r.revoked_at_ms else 'active'}")


@reviewer_group.command("revoke")
@store_option
@click.argument("name")
def revoke_cmd(db: StoreUrl, name: str) -> None:
    """Revoke NAME's token at once; their labels stay, attributed to them.

    Example:

        tracesieve reviewer revoke ana@example.com
    """
    with cli_errors():
        _reviewers(db).revoke(name, now_ms=now_ms())
    click.echo(f"Revoked {name}.")


COMMANDS: list[click.Command] = [reviewer_group]
