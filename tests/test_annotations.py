"""Annotations and tags on studies and images: added and removed by the study's governors over the CLI and
HTTP, seen by whoever may read, searchable at once, versioned and audited."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np

from fairimage.model.governance.policy import ANONYMOUS, Role, Scope, operator
from fairimage.services.discovery import search
from fairimage.services.governance import accounts, audit, policies, versions
from fairimage.services.ingest.intake import ingest_paths
from fairimage.services.repository import init_repository
from fairimage.settings import load_settings
from tests import samples
from tests.conftest import LiveServer, run_cli

ADMIN = operator("test")


def test_annotations_on_the_command_line(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    picture = samples.png(tmp_path / "w.png", np.full((8, 8), 3, np.uint8))
    run_cli("ingest", picture, "--study", "Screen", "--repo", repo, check=True)
    (image,) = json.loads(run_cli("images", "--repo", repo, "--json", check=True).stdout)
    run_cli("annotate", "Screen", "cell line=HeLa Kyoto", "--tag", "mitosis", "--repo", repo, check=True)
    added = json.loads(
        run_cli(
            "annotate", image["id"], "well=A01", "--tag", "Outlier", "--repo", repo, "--json", check=True
        ).stdout
    )
    assert [(a["kind"], a["key"], a["value"]) for a in added] == [
        ("map", "well", "A01"),
        ("tag", "tag", "Outlier"),
    ]
    listed = json.loads(run_cli("annotations", "Screen", "--repo", repo, "--json", check=True).stdout)
    assert {(a["key"], a["value"]) for a in listed} == {("cell line", "HeLa Kyoto"), ("tag", "mitosis")}
    found = json.loads(run_cli("search", "Kyoto", "--repo", repo, "--json", check=True).stdout)
    assert found["total"] == 1 and found["facets"]["tag"][0]["value"] in ("mitosis", "outlier")
    tagged = json.loads(
        run_cli("search", "--facet", "tag=outlier", "--repo", repo, "--json", check=True).stdout
    )
    assert [hit["id"] for hit in tagged["hits"]] == [image["id"]]
    run_cli("annotate", image["id"], "--remove", added[1]["id"], "--repo", repo, check=True)
    gone = json.loads(
        run_cli("search", "--facet", "tag=outlier", "--repo", repo, "--json", check=True).stdout
    )
    assert gone["total"] == 0
    notes = [
        v["note"]
        for v in json.loads(run_cli("versions", "Screen", "--repo", repo, "--json", check=True).stdout)
    ]
    assert notes[-3:] == ["annotations changed"] * 3
    bad = run_cli("annotate", "Screen", "no-equals-sign", "--repo", repo)
    assert (
        bad.returncode == 2
        and bad.stderr.strip() == "error: 'no-equals-sign': write KEY=VALUE, e.g. 'cell line=HeLa'"
    )


def test_annotations_over_http_follow_the_access_rules(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "repo")
    repository = init_repository(settings)
    (outcome,) = ingest_paths(
        repository, [samples.png(tmp_path / "p.png", np.ones((8, 8), np.uint8))], study="Private"
    )
    policies.set_policy(repository, ADMIN, "Private", "private")
    accounts.add_user(repository, ADMIN, "sam", Role.SUBMITTER)
    accounts.add_user(repository, ADMIN, "ada", Role.VIEWER)
    policies.set_owner(repository, ADMIN, "Private", "sam")
    policies.add_grant(repository, ADMIN, "Private", "ada")
    tokens = {
        name: accounts.create_token(repository, ADMIN, name, Scope.WRITE).secret for name in ("sam", "ada")
    }
    image = outcome.images[0]
    with LiveServer(settings) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        sam = {"Authorization": f"Bearer {tokens['sam']}"}
        ada = {"Authorization": f"Bearer {tokens['ada']}"}
        made = client.post(
            f"/api/images/{image}/annotations",
            headers=sam,
            json={"pairs": {"dose": "5 uM"}, "tags": ["qc-fail"]},
        )
        assert made.status_code == 201 and len(made.json()) == 2
        assert (
            client.post(f"/api/images/{image}/annotations", headers=ada, json={"tags": ["x"]}).status_code
            == 403
        )
        assert client.get(f"/api/images/{image}/annotations").status_code == 404  # anonymous: not even there
        seen = client.get(f"/api/images/{image}/annotations", headers=ada).json()
        assert {(a["key"], a["value"]) for a in seen} == {("dose", "5 uM"), ("tag", "qc-fail")}
        assert client.delete(f"/api/annotations/{made.json()[0]['id']}", headers=ada).status_code == 403
        assert client.delete(f"/api/annotations/{made.json()[0]['id']}", headers=sam).status_code == 204
        assert (
            client.post("/api/studies/Private/annotations", headers=sam, json={"tags": [""]}).status_code
            == 400
        )
    assert search.search(repository, ANONYMOUS, "qc-fail").total == 0
    owner = accounts.principal_for_user(repository, "sam")
    assert search.search(repository, owner, "", {"tag": ["QC-FAIL"]}).total == 1
    assert [e.actor for e in audit.entries(repository, action="annotation.add")] == ["sam"]
    assert versions.get_version(repository, ADMIN, "Private", None).content.metadata["annotations"] == [
        [image, "tag", "tag", "qc-fail"]
    ]
    repository.close()
