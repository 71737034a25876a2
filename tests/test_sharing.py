"""Share links as a reviewer uses them: a private study opened from a link without an account (pages in
Chromium, pixels with zarr-python), every use audited, and everything gone at once when it is revoked."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pytest
import zarr

from fairimage.settings import load_settings
from tests import samples
from tests.conftest import LiveServer, run_cli
from tests.test_browser import ARGS, CHROMIUM


@pytest.fixture
def private_study(tmp_path: Path) -> tuple[Path, str, np.ndarray]:
    pixels = samples.ramp((2, 96, 128), seed=8)
    source = samples.ome_tiff(tmp_path / "embryo.ome.tif", pixels, axes="CYX")
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    (outcome,) = json.loads(
        run_cli("ingest", source, "--study", "Embryo", "--repo", repo, "--json", check=True).stdout
    )
    run_cli("study", "policy", "Embryo", "private", "--repo", repo, check=True)
    return repo, outcome["images"][0], pixels


def test_a_reviewer_reads_a_private_study_from_a_link_until_it_is_revoked(
    private_study: tuple[Path, str, np.ndarray],
) -> None:
    repo, image_id, pixels = private_study
    made = run_cli(
        "share",
        "create",
        "Embryo",
        "--days",
        "7",
        "--note",
        "reviewers",
        "--repo",
        repo,
        "--json",
        check=True,
    )
    link = json.loads(made.stdout)
    secret = link["secret"]
    assert (
        secret.startswith("fis_") and secret not in run_cli("share", "list", "Embryo", "--repo", repo).stdout
    )
    with LiveServer(load_settings(repo)) as server:
        zarr_url = f"{server.url}/zarr/{image_id}.ome.zarr"
        assert httpx.get(f"{zarr_url}/zarr.json").status_code == 404  # private: not for anonymous callers
        shared_url = f"{server.url}/s/{secret}/zarr/{image_id}.ome.zarr"
        level = zarr.open_group(shared_url, mode="r")["0"]
        assert np.array_equal(np.asarray(level[...]).squeeze(), pixels)
        bearer = {"Authorization": f"Bearer {secret}"}
        assert httpx.get(f"{zarr_url}/zarr.json", headers=bearer).status_code == 200
        assert httpx.get(f"{server.url}/api/images/{image_id}/thumbnail", headers=bearer).status_code == 200
        listed = httpx.get(f"{server.url}/api/studies", headers=bearer).json()
        assert [study["name"] for study in listed] == ["Embryo"]
        assert httpx.post(
            f"{server.url}/api/studies/Embryo/share-links", json={}, headers=bearer
        ).status_code in (
            401,
            403,
        )  # a link reads; it cannot make links or change anything
        listed_links = httpx.get(f"{server.url}/api/studies/Embryo/share-links", headers=bearer)
        assert listed_links.status_code == 403  # nor see the study's other links

        with httpx.Client(base_url=server.url, follow_redirects=True) as browser:
            opened = browser.get(f"/s/{secret}")
            assert opened.status_code == 200 and "Embryo" in opened.text
            assert browser.get(f"/images/{image_id}").status_code == 200
            run_cli("share", "revoke", link["id"], "--repo", repo, check=True)
            assert browser.get(f"/images/{image_id}").status_code == 404
            assert browser.get(f"/s/{secret}").status_code == 404
        assert httpx.get(f"{shared_url}/zarr.json").status_code in (401, 404)
        assert httpx.get(f"{server.url}/api/images/{image_id}/thumbnail", headers=bearer).status_code == 401
    audit = run_cli("audit", "log", "--limit", "200", "--repo", repo, "--json", check=True).stdout
    entries = json.loads(audit)
    actions = [(entry["actor"], entry["action"]) for entry in entries]
    assert ("share:" + link["id"], "data.read") in actions
    assert any(action == "share.revoke" for _, action in actions)


def test_an_expired_link_and_a_made_up_one_open_nothing(private_study: tuple[Path, str, np.ndarray]) -> None:
    repo, image_id, _ = private_study
    link = json.loads(run_cli("share", "create", "Embryo", "--repo", repo, "--json", check=True).stdout)
    import sqlite3

    with sqlite3.connect(repo / "catalog.sqlite") as catalog:
        catalog.execute(
            "UPDATE share_links SET expires_at = '2020-01-01 00:00:00' WHERE id = ?", (link["id"],)
        )
    with LiveServer(load_settings(repo)) as server:
        for secret in (link["secret"], "fis_" + "x" * 43):
            answer = httpx.get(
                f"{server.url}/zarr/{image_id}.ome.zarr/zarr.json",
                headers={"Authorization": f"Bearer {secret}"},
            )
            assert answer.status_code == 401 and "share link" in answer.text
            assert httpx.get(f"{server.url}/s/{secret}").status_code == 404


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (make test installs it)"
)
def test_a_link_opens_the_study_in_chromium_without_an_account(
    private_study: tuple[Path, str, np.ndarray],
) -> None:
    from playwright.sync_api import sync_playwright

    repo, image_id, _ = private_study
    secret = json.loads(run_cli("share", "create", "Embryo", "--repo", repo, "--json", check=True).stdout)[
        "secret"
    ]
    with LiveServer(load_settings(repo)) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{server.url}/s/{secret}")
            assert "/studies/study-" in page.url and "Embryo" in page.locator("h1").inner_text()
            page.goto(f"{server.url}/images/{image_id}")
            assert "Embryo" in page.content() and page.locator("h1").count() == 1
            thumbnail = page.request.get(f"{server.url}/api/images/{image_id}/thumbnail")
            assert thumbnail.status == 200  # the browser's cookie carries the link to the API too
        finally:
            browser.close()


def test_a_blind_link_hides_every_name_from_pages_metadata_versions_and_exports(
    private_study: tuple[Path, str, np.ndarray], tmp_path: Path
) -> None:
    repo, _, _ = private_study
    study = tmp_path / "study.yaml"
    study.write_text(
        "schema: fairimage-rembi/1\nstudy:\n  title: Zebrafish embryo development\n"
        "  description: Light-sheet time lapse of zebrafish embryos.\n"
        "  authors:\n    - name: Ada Lovelace\n      orcid: 0000-0002-1825-0097\n"
        "      affiliation: Analytical Lab\n"
        "  funding: [Lovelace Foundation grant 42]\n  acknowledgements: We thank Charles Babbage.\n"
    )
    run_cli("metadata", "set", "Embryo", study, "--repo", repo, check=True)
    blind = json.loads(
        run_cli("share", "create", "Embryo", "--blind", "--repo", repo, "--json", check=True).stdout
    )
    open_ = json.loads(run_cli("share", "create", "Embryo", "--repo", repo, "--json", check=True).stdout)
    names = ("Ada Lovelace", "Analytical Lab", "Lovelace Foundation", "Babbage", "operator:")
    with LiveServer(load_settings(repo)) as server:

        def seen(secret: str) -> str:
            bearer = {"Authorization": f"Bearer {secret}"}
            with httpx.Client(base_url=server.url, headers=bearer, follow_redirects=True) as client:
                study_id = client.get("/api/studies").json()[0]["id"]
                answers = [
                    client.get(f"/studies/{study_id}"),
                    client.get(f"/api/studies/{study_id}/metadata"),
                    client.get(f"/api/studies/{study_id}/versions"),
                    client.get(f"/api/studies/{study_id}/export/datacite"),
                ]
            assert all(answer.status_code == 200 for answer in answers), [a.status_code for a in answers]
            return "\n".join(answer.text for answer in answers)

        reviewer, collaborator = seen(blind["secret"]), seen(open_["secret"])
    assert "Zebrafish embryo development" in reviewer  # the science is there
    assert [name for name in names if name in reviewer] == []
    assert all(name in collaborator for name in names[:4])


def test_a_link_to_one_version_shows_that_version_and_serves_as_many_clients_as_it_was_made_for(
    private_study: tuple[Path, str, np.ndarray], tmp_path: Path
) -> None:
    repo, first, _ = private_study
    later = samples.ome_tiff(tmp_path / "later.ome.tif", samples.ramp((2, 64, 64), seed=9), axes="CYX")
    (outcome,) = json.loads(
        run_cli("ingest", later, "--study", "Embryo", "--repo", repo, "--json", check=True).stdout
    )
    added = outcome["images"][0]  # in version 2, after the one the reviewers get
    made = run_cli(
        "share", "create", "Embryo", "--version", "1", "--uses", "2", "--repo", repo, "--json", check=True
    )
    link = json.loads(made.stdout)
    assert (link["version"], link["max_uses"]) == (1, 2)
    refused = run_cli("share", "create", "Embryo", "--version", "9", "--repo", repo)
    assert refused.returncode != 0 and "its versions are 1 to 2" in refused.stderr

    with LiveServer(load_settings(repo)) as server:
        bearer = {"Authorization": f"Bearer {link['secret']}"}
        with httpx.Client(base_url=server.url, headers=bearer) as reviewer:
            assert reviewer.get(f"/zarr/{first}.ome.zarr/zarr.json").status_code == 200
            assert reviewer.get(f"/zarr/{added}.ome.zarr/zarr.json").status_code == 404
            assert reviewer.get(f"/api/images/{added}/thumbnail").status_code == 404
            listed = reviewer.get("/api/images", params={"study": "Embryo"}).json()
            assert [image["id"] for image in listed["items"]] == [first]
            assert reviewer.get("/api/studies/Embryo").json()["image_count"] == 1
            versions = reviewer.get("/api/studies/Embryo/versions").json()
            assert [version["number"] for version in versions] == [1]
            assert reviewer.get("/api/studies/Embryo/versions/2").status_code == 404
            bundle = reviewer.get(f"/ga4gh/drs/v1/objects/{link['study_id']}").json()
            assert [item["id"] for item in bundle["contents"]] == [first]
            assert added not in reviewer.get("/api/search", params={"q": "later"}).text
        with httpx.Client(base_url=server.url, follow_redirects=True) as browser:
            opened = browser.get(f"/s/{link['secret']}")
            assert opened.url.path == f"/studies/{link['study_id']}/versions/1"
        # One address has used it (127.0.0.1); a second may, a third may not.
        second = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"), headers=bearer)
        third = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.3"), headers=bearer)
        with second, third:
            assert second.get(f"{server.url}/zarr/{first}.ome.zarr/zarr.json").status_code == 200
            denied = third.get(f"{server.url}/zarr/{first}.ome.zarr/zarr.json")
            assert denied.status_code == 401 and "made for 2 client(s)" in denied.json()["error"]["message"]
            assert second.get(f"{server.url}/zarr/{first}.ome.zarr/zarr.json").status_code == 200

    listed_links = json.loads(run_cli("share", "list", "Embryo", "--repo", repo, "--json", check=True).stdout)
    assert [(item["uses"], item["max_uses"]) for item in listed_links] == [(2, 2)]
    entries = json.loads(
        run_cli("audit", "log", "--limit", "200", "--repo", repo, "--json", check=True).stdout
    )
    uses = [entry for entry in entries if entry["action"] == "share.use"]
    assert sorted(entry["origin"] for entry in uses) == ["127.0.0.1", "127.0.0.2"]
