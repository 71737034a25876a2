"""Accounts, tokens and grants as users meet them: the CLI, the HTTP API and the catalog file itself."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlalchemy import text

from fairimage.model.errors import ForbiddenError, InvalidInputError, NotFoundError
from fairimage.model.governance.policy import Role, Scope, operator
from fairimage.services.governance import accounts, audit, policies
from fairimage.services.ingest.intake import ingest_paths
from fairimage.services.repository import Repository, init_repository
from fairimage.settings import load_settings
from tests import samples
from tests.conftest import FAIRIMAGE, LiveServer, run_cli

ADMIN = operator("test")
PASSWORD = "correct horse battery staple"


@dataclass
class Site:
    repo: Path
    repository: Repository
    image: str


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    settings = load_settings(tmp_path / "repo")
    repository = init_repository(settings)
    path = samples.png(tmp_path / "cells.png", np.arange(600, dtype=np.uint8).reshape(20, 30))
    (outcome,) = ingest_paths(repository, [path], study="Patients")
    policies.set_policy(repository, ADMIN, "Patients", "private")
    accounts.add_user(repository, ADMIN, "ada", Role.VIEWER, password=PASSWORD)
    accounts.add_user(repository, ADMIN, "sam", Role.SUBMITTER)
    yield Site(settings.repo, repository, outcome.images[0])
    repository.close()


def test_passwords_are_argon2id_and_no_secret_is_stored_or_logged_in_clear(site: Site) -> None:
    token = accounts.create_token(site.repository, ADMIN, "ada", Scope.READ, note="laptop")
    with site.repository.engine.connect() as connection:
        stored = connection.execute(text("select password_hash from users where name = 'ada'")).scalar_one()
    assert stored.startswith("$argon2id$")
    catalog = (site.repo / "catalog.sqlite").read_bytes() + b"".join(
        path.read_bytes() for path in site.repo.glob("catalog.sqlite-*")
    )
    assert PASSWORD.encode() not in catalog and token.secret.encode() not in catalog
    for entry in audit.entries(site.repository):
        assert token.secret not in str(entry.details) and PASSWORD not in str(entry.details)


def test_authentication_gives_one_answer_for_a_wrong_name_or_password(site: Site) -> None:
    assert accounts.authenticate(site.repository, "ada", PASSWORD).name == "ada"
    for name, password in (("ada", "wrong password!!"), ("nobody", PASSWORD)):
        with pytest.raises(ForbiddenError, match=r"^wrong user name or password$"):
            accounts.authenticate(site.repository, name, password)
    with pytest.raises(InvalidInputError, match="at least 12 characters"):
        accounts.set_password(site.repository, ADMIN, "ada", "short")


def test_tokens_expire_and_are_revoked_over_http(site: Site) -> None:
    live = accounts.create_token(site.repository, ADMIN, "ada", Scope.READ)
    old = accounts.create_token(site.repository, ADMIN, "ada", Scope.READ, timedelta(days=1))
    with site.repository.engine.begin() as connection:
        connection.execute(
            text("update api_tokens set expires_at = :past where id = :id"),
            {"past": datetime.now(UTC) - timedelta(seconds=1), "id": old.token.id},
        )
    with LiveServer(site.repository.settings) as server:

        def studies(secret: str) -> httpx.Response:
            return httpx.get(f"{server.url}/api/studies", headers={"Authorization": f"Bearer {secret}"})

        assert studies(live.secret).status_code == 200
        expired = studies(old.secret)
        assert expired.status_code == 401 and "expired" in expired.json()["error"]["message"]
        accounts.revoke_token(site.repository, ADMIN, live.token.id)
        revoked = studies(live.secret)
        assert revoked.status_code == 401 and "revoked" in revoked.json()["error"]["message"]


def test_a_grant_admits_at_once_and_its_revocation_takes_effect_at_once(site: Site) -> None:
    secret = accounts.create_token(site.repository, ADMIN, "ada", Scope.READ).secret
    headers = {"Authorization": f"Bearer {secret}"}
    with LiveServer(site.repository.settings) as server:
        chunk = f"{server.url}/zarr/{site.image}.ome.zarr/zarr.json"
        assert httpx.get(chunk, headers=headers).status_code == 404
        grant = policies.add_grant(site.repository, ADMIN, "Patients", "ada", reason="IRB-2026-17")
        assert httpx.get(chunk, headers=headers).status_code == 200
        assert httpx.get(f"{server.url}/api/images", headers=headers).json()["total"] == 1
        policies.revoke_grant(site.repository, ADMIN, grant.id)
        assert httpx.get(chunk, headers=headers).status_code == 404
        assert httpx.get(f"{server.url}/api/images", headers=headers).json()["total"] == 0
    entries = [(entry.action, entry.decision) for entry in audit.entries(site.repository, limit=6)]
    assert entries == [  # newest first; each read of the private image is recorded, once per decision
        ("data.read", "denied"),
        ("grant.revoke", "done"),
        ("data.read", "allowed"),
        ("grant.add", "done"),
        ("data.read", "denied"),
        ("token.create", "done"),
    ]


def test_who_may_change_a_study(site: Site) -> None:
    read_token = accounts.create_token(site.repository, ADMIN, "sam", Scope.READ).secret
    write_token = accounts.create_token(site.repository, ADMIN, "sam", Scope.WRITE).secret
    reader = accounts.principal_for_token(site.repository, read_token)
    writer = accounts.principal_for_token(site.repository, write_token)
    with pytest.raises(NotFoundError):  # a private study sam may not see does not exist for sam
        policies.set_policy(site.repository, writer, "Patients", "public")
    policies.set_owner(site.repository, ADMIN, "Patients", "sam")
    owner_reader = accounts.principal_for_token(site.repository, read_token)
    with pytest.raises(ForbiddenError, match="scope is read; this needs write"):
        policies.set_policy(site.repository, owner_reader, "Patients", "public")
    owner = accounts.principal_for_token(site.repository, write_token)
    assert policies.set_policy(site.repository, owner, "Patients", "restricted").value == "restricted"
    assert reader.scope is Scope.READ
    with pytest.raises(InvalidInputError, match="only admins hold admin tokens"):
        accounts.create_token(site.repository, ADMIN, "sam", Scope.ADMIN)
    with pytest.raises(InvalidInputError, match="give the date it ends"):
        policies.set_policy(site.repository, ADMIN, "Patients", "embargoed")


def test_cli_creates_users_and_tokens_and_prints_the_secret_once(site: Site) -> None:
    site.repository.close()
    made = run_cli(
        "token", "create", "ada", "--scope", "read", "--note", "ci", "--repo", site.repo, check=True
    )
    secret = made.stdout.strip()
    assert secret.startswith("fi_") and "expires" in made.stderr
    listed = run_cli("token", "list", "--repo", site.repo, "--json", check=True).stdout
    assert secret not in listed and '"note": "ci"' in listed
    added = subprocess.run(
        [FAIRIMAGE, "user", "add", "eve", "--role", "viewer", "--password-stdin", "--repo", str(site.repo)],
        input="too short\n",
        capture_output=True,
        text=True,
    )
    assert added.returncode == 2
    assert (
        added.stderr.strip()
        == "error: password: use at least 12 characters (a passphrase is easiest to remember)"
    )
    bad_role = run_cli("user", "add", "eve", "--role", "boss", "--repo", site.repo)
    assert (
        bad_role.returncode == 2
        and "role 'boss': use one of admin, steward, submitter, viewer" in bad_role.stderr
    )
    policy = run_cli("study", "policy", "Patients", "embargoed", "--until", "2030-01-01", "--repo", site.repo)
    assert policy.returncode == 0 and "Patients: embargoed until 2030-01-01" in policy.stdout
