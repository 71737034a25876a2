"""Commands for people and permissions: users, tokens, study policies and owners, grants, the audit log."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, time, timedelta
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
from fairimage.model.errors import InvalidInputError
from fairimage.model.governance.policy import parse_role, parse_scope
from fairimage.services.federation import witness
from fairimage.services.governance import accounts, audit, fixity, policies

user_app = typer.Typer(
    help="Users and their roles (admin, steward, submitter, viewer).", no_args_is_help=True
)
token_app = typer.Typer(
    help="API tokens: bearer credentials with a scope and an expiry.", no_args_is_help=True
)
study_app = typer.Typer(help="A study's policy and owner.", no_args_is_help=True)
grant_app = typer.Typer(help="Access to a study for one user or one group.", no_args_is_help=True)
group_app = typer.Typer(
    help="Groups of users (a lab, a consortium) that grants can name.", no_args_is_help=True
)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)

UntilOption = Annotated[
    str | None, typer.Option("--until", help="a date, YYYY-MM-DD (the end of that day, UTC)")
]


def register(app: typer.Typer) -> None:
    app.command("fixity")(fixity_command)
    app.add_typer(user_app, name="user")
    app.add_typer(token_app, name="token")
    app.add_typer(study_app, name="study")
    app.add_typer(grant_app, name="grant")
    app.add_typer(group_app, name="group")
    app.add_typer(audit_app, name="audit")


def _date(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(f"--until {text!r}: write the date as YYYY-MM-DD, e.g. 2027-06-30") from None
    return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)


def _read_password(from_stdin: bool) -> str:
    """A password from standard input or a hidden prompt; never from an argument (shell history, ps)."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = typer.prompt("Password", hide_input=True)
    if typer.prompt("Again", hide_input=True) != first:
        raise InvalidInputError("the two passwords differ; try again")
    return str(first)


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="the user's login name")],
    role: Annotated[str, typer.Option(help="admin, steward, submitter or viewer")] = "viewer",
    email: Annotated[str, typer.Option(help="contact address")] = "",
    password: Annotated[bool, typer.Option("--password", help="set a password (asked for, hidden)")] = False,
    password_stdin: Annotated[bool, typer.Option(help="read the password from standard input")] = False,
    repo: RepoOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add a user. Without a password the user works with API tokens only."""
    secret = _read_password(password_stdin) if password or password_stdin else None
    user = as_operator(repo, accounts.add_user, name, parse_role(role), email, secret)
    if as_json:
        _json(user.__dict__)
    else:
        out.print(f"added user {user.name} ({user.role}), id {user.id}", highlight=False)


@user_app.command("list")
def user_list(repo: RepoOption = None, as_json: JsonOption = False) -> None:
    """List the users."""
    users = as_operator(repo, accounts.list_users)
    if as_json:
        _json([user.__dict__ for user in users])
        return
    table = Table("name", "role", "email", "password", "id", box=None)
    for user in users:
        table.add_row(user.name, user.role, user.email, "yes" if user.has_password else "no", user.id)
    print_listing(table, "No users yet: add one with 'fairimage user add NAME --role ROLE'.")


@user_app.command("disable")
def user_disable(
    name: Annotated[str, typer.Argument(help="the user's login name")],
    enable: Annotated[bool, typer.Option("--enable", help="enable the user again instead")] = False,
    repo: RepoOption = None,
) -> None:
    """Disable a user: their tokens and web sessions stop working at the next request."""
    user = as_operator(repo, accounts.set_disabled, name, not enable)
    out.print(f"{user.name}: {'disabled' if user.disabled else 'enabled'}", highlight=False)


@user_app.command("password")
def user_password(
    name: Annotated[str, typer.Argument(help="the user's login name")],
    password_stdin: Annotated[bool, typer.Option(help="read the password from standard input")] = False,
    repo: RepoOption = None,
) -> None:
    """Set a user's password (asked for, hidden)."""
    secret = _read_password(password_stdin)
    as_operator(repo, accounts.set_password, name, secret)
    out.print(f"password of {name} set")


@token_app.command("create")
def token_create(
    user: Annotated[str, typer.Argument(help="the user the token acts for")],
    scope: Annotated[str, typer.Option(help="read, write or admin")] = "read",
    expires_days: Annotated[int, typer.Option(help="days until it expires; 0 = never", min=0)] = 90,
    note: Annotated[str, typer.Option(help="what the token is for")] = "",
    repo: RepoOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create an API token. Its secret is printed once and cannot be shown again."""
    expires = timedelta(days=expires_days) if expires_days else None
    made = as_operator(repo, accounts.create_token, user, parse_scope(scope), expires, note)
    if as_json:
        _json({**made.token.__dict__, "secret": made.secret})
        return
    expiry = made.token.expires_at.date().isoformat() if made.token.expires_at else "never"
    err.print(f"token {made.token.id} for {user}, scope {scope}, expires {expiry}; keep the secret now:")
    out.print(made.secret, highlight=False)


@token_app.command("list")
def token_list(
    user: Annotated[str | None, typer.Option(help="only this user's tokens")] = None,
    repo: RepoOption = None,
    as_json: JsonOption = False,
) -> None:
    """List tokens (never their secrets)."""
    tokens = as_operator(repo, accounts.list_tokens, user)
    if as_json:
        _json([token.__dict__ for token in tokens])
        return
    table = Table("id", "user", "scope", "expires", "revoked", "note", box=None)
    for token in tokens:
        expires = token.expires_at.date().isoformat() if token.expires_at else "never"
        table.add_row(token.id, token.user, token.scope, expires, "yes" if token.revoked else "", token.note)
    print_listing(table, "No tokens.")


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(help="the token's id (not its secret)")], repo: RepoOption = None
) -> None:
    """Revoke a token; it stops working at once."""
    as_operator(repo, accounts.revoke_token, token_id)
    out.print(f"revoked {token_id}")


@study_app.command("policy")
def study_policy(
    study: Annotated[str, typer.Argument(help="study id or name")],
    policy: Annotated[str, typer.Argument(help="public, embargoed, restricted or private")],
    until: UntilOption = None,
    repo: RepoOption = None,
) -> None:
    """Set who may see a study: everyone, everyone after an embargo, granted users, or owner and grants."""
    kind = as_operator(repo, policies.set_policy, study, policy, _date(until))
    out.print(f"{study}: {kind}" + (f" until {until}" if until else ""), highlight=False)


@study_app.command("owner")
def study_owner(
    study: Annotated[str, typer.Argument(help="study id or name")],
    user: Annotated[str, typer.Argument(help="the new owner's user name")],
    repo: RepoOption = None,
) -> None:
    """Give a study an owner, who may then change its policy and grant access."""
    as_operator(repo, policies.set_owner, study, user)
    out.print(f"{study}: owned by {user}", highlight=False)


@grant_app.command("add")
def grant_add(
    study: Annotated[str, typer.Argument(help="study id or name")],
    user: Annotated[str | None, typer.Argument(help="who may read it (or use --group)")] = None,
    group: Annotated[str | None, typer.Option(help="let every member of this group read it")] = None,
    until: UntilOption = None,
    reason: Annotated[str, typer.Option(help="why (kept in the audit log)")] = "",
    repo: RepoOption = None,
    as_json: JsonOption = False,
) -> None:
    """Let a user, or the members of a group, read a private or restricted study."""
    grant = as_operator(repo, policies.add_grant, study, user, _date(until), reason, group=group)
    if as_json:
        _json(grant.__dict__)
    else:
        who = user if user is not None else f"group {group}"
        out.print(f"granted {who} access to {grant.study} ({grant.id})", highlight=False)


@grant_app.command("list")
def grant_list(
    study: Annotated[str | None, typer.Option(help="only this study (id or name)")] = None,
    repo: RepoOption = None,
    as_json: JsonOption = False,
) -> None:
    """List grants."""
    grants = as_operator(repo, policies.list_grants, study)
    if as_json:
        _json([grant.__dict__ for grant in grants])
        return
    table = Table("id", "study", "user or group", "until", "revoked", "by", box=None)
    for grant in grants:
        until = grant.expires_at.date().isoformat() if grant.expires_at else "-"
        who = grant.user if grant.user is not None else f"group:{grant.group}"
        table.add_row(grant.id, grant.study, who, until, "yes" if grant.revoked else "", grant.granted_by)
    print_listing(table, "No grants.")


@grant_app.command("revoke")
def grant_revoke(
    grant_id: Annotated[str, typer.Argument(help="the grant's id")], repo: RepoOption = None
) -> None:
    """Revoke a grant; it stops working at the user's next request."""
    as_operator(repo, policies.revoke_grant, grant_id)
    out.print(f"revoked {grant_id}")


@group_app.command("add")
def group_add(
    name: Annotated[str, typer.Argument(help="the group's name")],
    description: Annotated[str, typer.Option(help="who is in it, what it is for")] = "",
    repo: RepoOption = None,
) -> None:
    """Create a group; add users with 'fairimage group member GROUP USER'."""
    group = as_operator(repo, accounts.add_group, name, description)
    out.print(f"added group {group.name}, id {group.id}", highlight=False)


@group_app.command("member")
def group_member(
    group: Annotated[str, typer.Argument(help="the group's name")],
    users: Annotated[list[str], typer.Argument(help="user names")],
    remove: Annotated[bool, typer.Option("--remove", help="take the users out of the group")] = False,
    repo: RepoOption = None,
) -> None:
    """Add users to a group (or --remove them); they read what the group was granted at once."""
    with opened(repo) as repository:
        for user in users:
            found = accounts.set_membership(repository, operator_principal(), group, user, not remove)
    out.print(f"{found.name}: {', '.join(found.members) or 'no members'}", highlight=False)


@group_app.command("list")
def group_list(repo: RepoOption = None, as_json: JsonOption = False) -> None:
    """List the groups and their members."""
    groups = as_operator(repo, accounts.list_groups)
    if as_json:
        _json([group.__dict__ for group in groups])
        return
    table = Table("name", "members", "description", "id", box=None)
    for group in groups:
        table.add_row(group.name, ", ".join(group.members), group.description, group.id)
    print_listing(table, "No groups yet: add one with 'fairimage group add NAME'.")


@audit_app.command("verify")
def audit_verify(
    anchor: Annotated[
        str | None, typer.Option(help="a head kept earlier, SEQ:HASH, that the chain must still contain")
    ] = None,
    witnesses: Annotated[
        bool,
        typer.Option(
            "--witnesses", help="and prove the log matches every checkpoint of it the peers cosigned"
        ),
    ] = False,
    repo: RepoOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check every entry's hash and link; name the first entry that was edited, removed, inserted or moved.
    With --witnesses, also ask each peer for the checkpoints of this log it witnessed: a history rewritten
    with every hash recomputed still fails there, naming the first checkpoint it no longer matches."""
    with opened(repo) as repository:
        result = audit.verify(repository, anchor)
        checks = witness.verify_witnessed(repository, operator_principal()) if witnesses else []
    broken = [check for check in checks if check.status != "consistent"]
    if as_json:
        _json({**result.__dict__, "ok": result.ok and not broken, "witnesses": [c.__dict__ for c in checks]})
    else:
        if result.ok:
            out.print(
                f"audit log intact: {result.entries} entries, head {result.head_seq}:{result.head_hash}"
            )
        else:
            err.print(f"audit log TAMPERED: {result.problem}", highlight=False, markup=False)
        for check in checks:
            if check.status == "consistent":
                out.print(f"  {check.peer}: consistent with {check.checkpoints} witnessed checkpoint(s)")
            else:
                err.print(
                    f"  {check.peer}: {check.status.upper()}: {check.problem}", highlight=False, markup=False
                )
    if not result.ok or any(check.status in ("inconsistent", "invalid") for check in checks):
        raise typer.Exit(6)
    if broken:
        raise typer.Exit(5)


@audit_app.command("head")
def audit_head(repo: RepoOption = None, as_json: JsonOption = False) -> None:
    """Print the chain's head (SEQ:HASH): keep it elsewhere and check later with 'audit verify --anchor'."""
    with opened(repo) as repository:
        result = audit.verify(repository)
    if as_json:
        _json({"seq": result.head_seq, "hash": result.head_hash, "intact": result.ok})
    else:
        out.print(f"{result.head_seq}:{result.head_hash}")


@audit_app.command("log")
def audit_log(
    limit: Annotated[int, typer.Option(help="how many entries, newest first", min=1)] = 50,
    action: Annotated[str | None, typer.Option(help="only this action, e.g. grant.add")] = None,
    repo: RepoOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show the newest audit entries."""
    with opened(repo) as repository:
        entries = audit.entries(repository, limit, action)
    if as_json:
        _json([entry.__dict__ for entry in entries])
        return
    table = Table("seq", "at", "actor", "action", "target", "decision", box=None)
    for entry in entries:
        table.add_row(str(entry.seq), entry.at[:19], entry.actor, entry.action, entry.target, entry.decision)
    print_listing(table, "The audit log is empty.")


def fixity_command(
    sample: Annotated[
        float, typer.Option(help="re-hash this percentage of the objects, chosen at random (100 = all)")
    ] = 100.0,
    repo: RepoOption = None,
    as_json: JsonOption = False,
) -> None:
    """Re-hash stored objects against their manifests; report missing, corrupted or unexpected keys."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    with opened(repo) as repository:
        bar = Progress(
            "checking",
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=err,
            disable=as_json or not err.is_terminal,
            transient=True,
        )
        with bar:
            task = bar.add_task("fixity", total=fixity.stored_bytes(repository) * sample / 100)
            report = fixity.check_fixity(
                repository, sample, operator_principal().name, lambda n: bar.advance(task, n)
            )
    if as_json:
        _json({**report.__dict__, "problems": [p.__dict__ for p in report.problems], "ok": report.ok})
    else:
        for problem in report.problems:
            err.print(problem.line(), highlight=False, markup=False)
        verdict = "all intact" if report.ok else f"{len(report.problems)} problem(s)"
        out.print(
            f"fixity: {report.images} images, {report.objects} objects, {report.bytes} bytes checked "
            f"({report.sample_percent:g}%): {verdict}",
            highlight=False,
        )
    if not report.ok:
        raise typer.Exit(7)
