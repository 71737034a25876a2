"""People and permissions over HTTP and the CLI: users and tokens (admins; anyone their own), groups whose
members share a grant, grant listings by role. A real server, real tokens, the real command."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

from fairimage.model.governance.policy import Role, Scope, operator
from fairimage.services.governance import accounts, audit, policies
from fairimage.services.ingest.intake import ingest_paths
from fairimage.services.repository import Repository, init_repository
from fairimage.settings import load_settings
from tests import samples
from tests.conftest import LiveServer, run_cli

ADMIN = operator("test")
PASSWORD = "a long enough passphrase"


@dataclass
class Node:
    url: str
    repository: Repository
    image: str  # of the private study "Lab data", owned by sam
    tokens: dict[str, str]

    def as_(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"} if name in self.tokens else {}


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    settings = load_settings(tmp_path / "repo")
    repository = init_repository(settings)
    path = samples.png(tmp_path / "lab.png", np.arange(600, dtype=np.uint8).reshape(20, 30))
    (outcome,) = ingest_paths(repository, [path], study="Lab data")
    ingest_paths(repository, [samples.png(tmp_path / "other.png", np.ones((8, 8), np.uint8))], study="Other")
    policies.set_policy(repository, ADMIN, "Lab data", "private")
    policies.set_policy(repository, ADMIN, "Other", "private")
    roles = {"root": Role.ADMIN, "stu": Role.STEWARD, "sam": Role.SUBMITTER, "ada": Role.VIEWER}
    roles |= {"bob": Role.VIEWER}
    tokens = {}
    for name, role in roles.items():
        accounts.add_user(repository, ADMIN, name, role)
        scope = Scope.ADMIN if role is Role.ADMIN else Scope.WRITE
        tokens[name] = accounts.create_token(repository, ADMIN, name, scope).secret
    policies.set_owner(repository, ADMIN, "Lab data", "sam")
    with LiveServer(settings) as server:
        yield Node(server.url, repository, outcome.images[0], tokens)
    repository.close()


def test_a_group_grant_admits_exactly_the_current_members(node: Node) -> None:
    pixels = f"/zarr/{node.image}.ome.zarr/zarr.json"
    with httpx.Client(base_url=node.url, timeout=30) as client:
        made = client.post("/api/groups", headers=node.as_("stu"), json={"name": "cell lab"})
        assert made.status_code == 201 and made.json()["members"] == []
        for user in ("ada", "bob"):
            added = client.put(f"/api/groups/cell lab/members/{user}", headers=node.as_("stu"))
            assert added.status_code == 200
        assert added.json()["members"] == ["ada", "bob"]
        assert client.get(pixels, headers=node.as_("ada")).status_code == 404  # no grant yet

        grant = client.post(
            "/api/grants", headers=node.as_("sam"), json={"study": "Lab data", "group": "cell lab"}
        )
        assert grant.status_code == 201, grant.text
        assert grant.json()["group"] == "cell lab" and grant.json()["user"] is None
        assert client.get(pixels, headers=node.as_("ada")).status_code == 200
        assert client.get(pixels, headers=node.as_("bob")).status_code == 200

        removed = client.delete("/api/groups/cell lab/members/bob", headers=node.as_("stu"))
        assert removed.json()["members"] == ["ada"]
        assert client.get(pixels, headers=node.as_("bob")).status_code == 404  # at his next request
        assert client.get(pixels, headers=node.as_("ada")).status_code == 200
        listed = client.get("/api/images", headers=node.as_("ada")).json()
        assert [image["id"] for image in listed["items"]] == [node.image]  # not the Other study's

        assert client.delete(f"/api/grants/{grant.json()['id']}", headers=node.as_("sam")).status_code == 204
        assert client.get(pixels, headers=node.as_("ada")).status_code == 404

        # Only admins and data stewards manage groups; a viewer is refused, anonymous too.
        assert client.post("/api/groups", headers=node.as_("ada"), json={"name": "mine"}).status_code == 403
        assert client.put("/api/groups/cell lab/members/ada").status_code == 403
        assert client.get("/api/groups", headers=node.as_("ada")).status_code == 403
    actions = [entry.action for entry in audit.entries(node.repository, limit=20)]
    assert {"group.add", "group.member.add", "group.member.remove", "grant.add", "grant.revoke"} <= set(
        actions
    )


def test_grant_listings_show_each_caller_what_they_govern(node: Node) -> None:
    policies.add_grant(node.repository, ADMIN, "Lab data", "ada", reason="IRB-1")
    policies.add_grant(node.repository, ADMIN, "Other", "bob", reason="IRB-2")
    with httpx.Client(base_url=node.url, timeout=30) as client:
        seen = {
            name: sorted(
                grant["reason"] for grant in client.get("/api/grants", headers=node.as_(name)).json()
            )
            for name in ("stu", "sam", "ada")
        }
        anonymous = client.get("/api/grants")
    assert seen == {"stu": ["IRB-1", "IRB-2"], "sam": ["IRB-1"], "ada": []}
    assert anonymous.status_code == 403


def test_admins_manage_users_and_everyone_their_own_tokens(node: Node) -> None:
    with httpx.Client(base_url=node.url, timeout=30) as client:
        new = {"name": "eve", "role": "viewer", "password": PASSWORD}
        assert client.post("/api/users", headers=node.as_("stu"), json=new).status_code == 403
        made = client.post("/api/users", headers=node.as_("root"), json=new)
        assert made.status_code == 201 and made.json()["has_password"] is True
        assert PASSWORD not in made.text and "password_hash" not in made.text
        assert client.post("/api/users", headers=node.as_("root"), json=new).status_code == 409
        names = [user["name"] for user in client.get("/api/users", headers=node.as_("stu")).json()]
        assert names == ["ada", "bob", "eve", "root", "sam", "stu"]
        assert client.get("/api/users", headers=node.as_("ada")).status_code == 403

        # ada makes a token for herself, not for bob, and not an admin one
        own = client.post("/api/tokens", headers=node.as_("ada"), json={"user": "ada", "note": "laptop"})
        assert own.status_code == 201 and own.json()["secret"].startswith("fi_")
        assert client.post("/api/tokens", headers=node.as_("ada"), json={"user": "bob"}).status_code == 403
        admin_scope = client.post(
            "/api/tokens", headers=node.as_("ada"), json={"user": "ada", "scope": "admin"}
        )
        assert admin_scope.status_code == 403
        laptop = {"Authorization": f"Bearer {own.json()['secret']}"}
        assert client.get("/api/studies", headers=laptop).status_code == 200
        mine = client.get("/api/tokens", headers=node.as_("ada")).json()
        assert {token["user"] for token in mine} == {"ada"} and len(mine) == 2
        assert all("secret" not in token for token in mine)
        everyone = client.get("/api/tokens", headers=node.as_("root")).json()
        assert len(everyone) == 6

        # a token's owner revokes it; someone else's token is not even found
        assert client.delete(f"/api/tokens/{own.json()['id']}", headers=node.as_("bob")).status_code == 404
        assert client.delete(f"/api/tokens/{own.json()['id']}", headers=node.as_("ada")).status_code == 204
        assert client.get("/api/studies", headers=laptop).status_code == 401

        # disabling a user stops their tokens at the next request, enabling restores them
        off = client.patch("/api/users/bob", headers=node.as_("root"), json={"disabled": True})
        assert off.status_code == 200 and off.json()["disabled"] is True
        assert client.get("/api/studies", headers=node.as_("bob")).status_code == 401
        client.patch("/api/users/bob", headers=node.as_("root"), json={"disabled": False})
        assert client.get("/api/studies", headers=node.as_("bob")).status_code == 200
        assert (
            client.patch("/api/users/bob", headers=node.as_("stu"), json={"disabled": True}).status_code
            == 403
        )

        # a user sets their own password, not someone else's; a short one is refused with the rule
        assert (
            client.patch("/api/users/ada", headers=node.as_("ada"), json={"password": PASSWORD}).status_code
            == 200
        )
        assert (
            client.patch("/api/users/bob", headers=node.as_("ada"), json={"password": PASSWORD}).status_code
            == 403
        )
        assert client.patch("/api/users/ada", headers=node.as_("ada"), json={}).status_code == 400


def test_groups_and_group_grants_from_the_command_line(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    picture = samples.png(tmp_path / "x.png", np.full((8, 8), 3, np.uint8))
    run_cli("ingest", picture, "--study", "Shared", "--repo", repo, check=True)
    for name in ("ada", "bob"):
        run_cli("user", "add", name, "--repo", repo, check=True)
    run_cli("group", "add", "consortium", "--description", "partners", "--repo", repo, check=True)
    shown = run_cli("group", "member", "consortium", "ada", "bob", "--repo", repo, check=True).stdout
    assert shown.strip() == "consortium: ada, bob"
    granted = run_cli("grant", "add", "Shared", "--group", "consortium", "--repo", repo, check=True)
    assert "granted group consortium access to Shared" in granted.stdout
    (grant,) = json.loads(run_cli("grant", "list", "--repo", repo, "--json", check=True).stdout)
    assert grant["group"] == "consortium" and grant["user"] is None
    (group,) = json.loads(run_cli("group", "list", "--repo", repo, "--json", check=True).stdout)
    assert group["members"] == ["ada", "bob"] and group["description"] == "partners"

    neither = run_cli("grant", "add", "Shared", "--repo", repo)
    assert neither.returncode == 2
    assert neither.stderr.strip() == "error: grant: name either a user or a group (--group NAME), not both"
    unknown = run_cli("group", "member", "nobody", "ada", "--repo", repo)
    assert unknown.returncode == 4
    assert unknown.stderr.strip() == "error: group 'nobody' not found; 'fairimage group list' shows them"
