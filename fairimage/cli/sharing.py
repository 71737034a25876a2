"""'fairimage share': read-only links to a study for people who have no account (a journal's reviewers)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer
from rich.table import Table

from fairimage.cli.common import (
    JsonOption,
    RepoOption,
    _json,
    as_operator,
    err,
    opened,
    operator_principal,
    out,
    print_listing,
)
from fairimage.services.sharing import links

share_app = typer.Typer(
    help="Share links: read-only access to one study for whoever holds the link.", no_args_is_help=True
)


@share_app.command("create")
def share_create(
    study: Annotated[str, typer.Argument(help="study id or name")],
    days: Annotated[int, typer.Option(min=1, max=links.MAX_DAYS, help="how long the link works")] = 30,
    note: Annotated[str, typer.Option(help="who it is for, e.g. 'reviewers, Nature'")] = "",
    blind: Annotated[
        bool, typer.Option("--blind", help="for double-blind review: no author's or owner's name is shown")
    ] = False,
    version: Annotated[
        int | None,
        typer.Option(min=1, help="share this version only: its images and metadata, nothing added later"),
    ] = None,
    uses: Annotated[
        int | None,
        typer.Option(
            min=1, max=links.MAX_USES, help="how many client addresses may use it (each reviewer's machine)"
        ),
    ] = None,
    as_json: JsonOption = False,
    repo: RepoOption = None,
) -> None:
    """Make a link; its secret is printed once (on stdout) and cannot be shown again. Give reviewers
    SERVER/s/SECRET; zarr clients read SERVER/s/SECRET/zarr/IMAGE.ome.zarr, or send it as a bearer token."""
    options = links.LinkOptions(days, note, blind, version, uses)
    with opened(repo) as repository:
        link, secret = links.create_link(repository, operator_principal(), study, options)
        base = repository.settings.public_url.rstrip("/")
    if as_json:
        _json({**asdict(link), "secret": secret, "path": f"/s/{secret}"})
        return
    out.print(f"{base}/s/{secret}", highlight=False)
    expires = link.expires_at.date().isoformat() if link.expires_at else "never"
    what = f"version {link.version} of study {link.study!r}" if link.version else f"study {link.study!r}"
    limit = f", for {link.max_uses} client(s)" if link.max_uses else ""
    err.print(
        f"share link {link.id} to {what}, until {expires}{limit}; "
        f"revoke it with: fairimage share revoke {link.id}",
        highlight=False,
    )


@share_app.command("list")
def share_list(
    study: Annotated[str, typer.Argument(help="study id or name")],
    as_json: JsonOption = False,
    repo: RepoOption = None,
) -> None:
    """A study's share links (never their secrets)."""
    found = as_operator(repo, links.list_links, study)
    if as_json:
        _json([asdict(link) for link in found])
        return
    table = Table("id", "version", "until", "uses", "revoked", "by", "note", box=None)
    for link in found:
        until = link.expires_at.date().isoformat() if link.expires_at else "never"
        uses = f"{link.uses}/{link.max_uses}" if link.max_uses else str(link.uses)
        table.add_row(
            link.id,
            str(link.version or "all"),
            until,
            uses,
            "yes" if link.revoked else "",
            link.created_by,
            link.note,
        )
    print_listing(table, f"No share links for {study}.")


@share_app.command("revoke")
def share_revoke(
    link_id: Annotated[str, typer.Argument(help="the link's id (not its secret)")], repo: RepoOption = None
) -> None:
    """Revoke a link: its pages, zarr keys and tiles are 404 from the next request on."""
    as_operator(repo, links.revoke_link, link_id)
    out.print(f"revoked {link_id}")
