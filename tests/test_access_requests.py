"""Controlled access as its users meet it over HTTP: a restricted study with DUO consent terms, a
researcher who applies with a research purpose, a data steward who approves, denies or revokes, and a
browser that signs in, with CSRF tokens on every form and throttled password guessing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from fairimage.model.governance.duo import DataUse
from fairimage.model.governance.policy import Role, Scope, operator
from fairimage.services.governance import accounts, audit, policies
from fairimage.services.ingest.intake import ingest_paths
from fairimage.services.recovery import open_repository
from fairimage.services.repository import init_repository
from fairimage.settings import load_settings
from tests import samples
from tests.conftest import LiveServer, run_cli

ADMIN = operator("test")
PASSWORD = "correct horse battery staple"
CANCER = "MONDO:0004992"
ADMITTED_PURPOSE = {
    "title": "Tumour morphology atlas",
    "use": "DS",
    "diseases": [CANCER],
    "ethics_approval": "ERB-2026-114",
    "accepts": ["PUB"],
}


@dataclass
class Node:
    url: str
    repo: Path
    study: str
    image: str
    tokens: dict[str, str]

    def client(self, who: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    settings = load_settings(tmp_path / "repo")
    repository = init_repository(settings)
    path = samples.png(tmp_path / "slide.png", np.arange(600, dtype=np.uint8).reshape(20, 30))
    (outcome,) = ingest_paths(repository, [path], study="Tumour slides")
    policies.set_policy(repository, ADMIN, "Tumour slides", "restricted")
    terms = DataUse(permission="DS", diseases=(CANCER,), modifiers=("NPU", "IRB", "PUB"))
    policies.set_data_use(repository, ADMIN, "Tumour slides", terms)
    tokens = {}
    for name, role in (("rita", Role.VIEWER), ("mallory", Role.VIEWER), ("dora", Role.STEWARD)):
        accounts.add_user(repository, ADMIN, name, role, password=PASSWORD)
        tokens[name] = accounts.create_token(repository, ADMIN, name, Scope.WRITE).secret
    tokens["rita-read"] = accounts.create_token(repository, ADMIN, "rita", Scope.READ).secret
    repository.close()
    with LiveServer(settings) as server:
        with httpx.Client(base_url=server.url) as client:
            study = client.get("/api/studies").json()[0]["id"]
        yield Node(server.url, settings.repo, study, outcome.images[0], tokens)


def apply(node: Node, who: str, purpose: dict[str, Any]) -> httpx.Response:
    with node.client(who) as client:
        return client.post("/api/access-requests", json={"study": "Tumour slides", "purpose": purpose})


def test_a_restricted_study_can_be_found_and_its_terms_read_but_not_its_images(node: Node) -> None:
    with node.client() as anonymous:
        study = anonymous.get(f"/api/studies/{node.study}").json()
        assert study["policy"] == "restricted" and study["may_read"] is False
        assert study["data_use"]["permission"] == "DUO:0000007"
        assert study["data_use"]["modifiers"] == ["DUO:0000019", "DUO:0000021", "DUO:0000045"]
        assert anonymous.get(f"/api/images/{node.image}").status_code == 404
        assert anonymous.get("/api/images").json()["total"] == 0
        page = anonymous.get(f"/studies/{node.study}", headers={"Accept": "text/html"}).text
        assert "not for profit organisation use only" in page and "Sign in" in page
        assert node.image not in page


def test_the_whole_flow_apply_approve_read_revoke(node: Node) -> None:
    refused = apply(node, "rita", {"title": "Anything at all", "use": "HMB"})
    assert refused.status_code == 403
    message = refused.json()["error"]["message"]
    assert "DS: only research on MONDO:0004992; HMB research is wider" in message
    assert "IRB: give your ethics approval" in message and "PUB: accept this condition" in message

    submitted = apply(node, "rita", ADMITTED_PURPOSE)
    assert submitted.status_code == 201, submitted.text
    request = submitted.json()
    assert request["state"] == "submitted" and request["assessment"]["decision"] == "admitted"
    assert "IRB: ethics approval ERB-2026-114" in request["assessment"]["conditions"]
    assert apply(node, "rita", ADMITTED_PURPOSE).status_code == 409  # one waiting request at a time

    with node.client("rita") as rita, node.client("dora") as dora, node.client("mallory") as mallory:
        assert rita.get(f"/api/images/{node.image}").status_code == 404  # not before approval
        assert mallory.get(f"/api/access-requests/{request['id']}").status_code == 404  # not hers
        assert mallory.post(f"/api/access-requests/{request['id']}/approve", json={}).status_code == 404
        assert rita.post(f"/api/access-requests/{request['id']}/approve", json={}).status_code == 403

        until = (datetime.now(UTC) + timedelta(days=90)).isoformat()
        approved = dora.post(f"/api/access-requests/{request['id']}/approve", json={"until": until})
        assert approved.status_code == 200, approved.text
        assert approved.json()["state"] == "approved" and approved.json()["access_until"]
        assert rita.get(f"/api/images/{node.image}").status_code == 200
        assert rita.get(f"/zarr/{node.image}.ome.zarr/zarr.json").status_code == 200
        mine = rita.get("/api/access-requests").json()
        assert [r["state"] for r in mine] == ["approved"]
        assert mallory.get(f"/api/images/{node.image}").status_code == 404

        no_reason = dora.post(f"/api/access-requests/{request['id']}/revoke", json={"note": ""})
        assert no_reason.status_code == 422
        revoked = dora.post(
            f"/api/access-requests/{request['id']}/revoke", json={"note": "consent withdrawn"}
        )
        assert revoked.json()["state"] == "revoked"
        assert rita.get(f"/api/images/{node.image}").status_code == 404  # at the very next request
        assert (
            rita.get(f"/api/access-requests/{request['id']}").json()["decision_note"] == "consent withdrawn"
        )

    entries = _audit(node)
    actions = [entry.action for entry in entries]
    for action in ("access.request", "grant.add", "access.approved", "access.revoked"):
        assert action in actions
    reads = [
        (e.actor, e.decision, e.origin) for e in entries if e.action == "data.read" and e.actor == "rita"
    ]
    # rita's reads of the image (metadata, then zarr.json: one entry) and the refusals around them
    assert reads == [
        ("rita", "denied", "127.0.0.1"),
        ("rita", "allowed", "127.0.0.1"),
        ("rita", "denied", "127.0.0.1"),
    ]


def test_denial_carries_its_reason_and_a_withdrawn_request_stops_waiting(node: Node) -> None:
    with node.client("rita") as rita, node.client("dora") as dora:
        first = apply(node, "rita", ADMITTED_PURPOSE).json()
        assert rita.post(f"/api/access-requests/{first['id']}/withdraw").json()["state"] == "withdrawn"
        second = apply(node, "rita", ADMITTED_PURPOSE).json()
        denied = dora.post(
            f"/api/access-requests/{second['id']}/deny", json={"note": "ERB reference unknown"}
        )
        assert denied.json()["state"] == "denied"
        seen = rita.get(f"/api/access-requests/{second['id']}").json()
        assert (seen["state"], seen["decision_note"], seen["decided_by"]) == (
            "denied",
            "ERB reference unknown",
            "dora",
        )
        again = dora.post(f"/api/access-requests/{second['id']}/approve", json={})
        assert again.status_code == 409 and "denied already" in again.json()["error"]["message"]


def test_a_read_token_cannot_apply_and_a_changed_consent_blocks_approval(node: Node) -> None:
    assert apply(node, "rita-read", ADMITTED_PURPOSE).status_code == 403
    request = apply(node, "rita", ADMITTED_PURPOSE).json()
    with node.client("dora") as dora:
        changed = dora.put(
            f"/api/studies/{node.study}/data-use", json={"permission": "DS", "diseases": ["MONDO:0005015"]}
        )
        assert changed.status_code == 200, changed.text
        refused = dora.post(f"/api/access-requests/{request['id']}/approve", json={})
        assert refused.status_code == 409 and "deny it instead" in refused.json()["error"]["message"]


def test_a_time_limited_consent_caps_the_grant(node: Node) -> None:
    with node.client("dora") as dora:
        terms = {"permission": "HMB", "modifiers": ["TS"], "months": 6}
        assert dora.put(f"/api/studies/{node.study}/data-use", json=terms).status_code == 200
        purpose = {"title": "Six months of work", "use": "HMB", "accepts": ["TS"]}
        request = apply(node, "rita", purpose).json()
        too_long = (datetime.now(UTC) + timedelta(days=400)).isoformat()
        capped = dora.post(f"/api/access-requests/{request['id']}/approve", json={"until": too_long})
        assert capped.status_code == 400 and "allows 6 months (TS)" in capped.json()["error"]["message"]
        approved = dora.post(f"/api/access-requests/{request['id']}/approve", json={}).json()
        days = (datetime.fromisoformat(approved["access_until"]) - datetime.now(UTC)).days
        assert 180 <= days <= 183


def test_bad_consent_terms_are_a_clear_400(node: Node) -> None:
    with node.client("dora") as dora:
        response = dora.put(f"/api/studies/{node.study}/data-use", json={"permission": "NPU"})
        assert response.status_code == 400
        assert "NPU is a data use modifier, not a permission" in response.json()["error"]["message"]
        terms = dora.get("/api/ontologies/duo/terms", params={"q": "profit"}).json()
        assert {term["shorthand"] for term in terms} == {"NPU", "NPUNCU"}
        # a DUO term has what every bundled ontology's term has (/api/ontologies/{name}/terms), and more
        assert all(term["parents"] and term["shorthand"] in term["synonyms"] for term in terms)


def _signed_in_browser(node: Node, name: str) -> httpx.Client:
    browser = httpx.Client(base_url=node.url, timeout=30, headers={"Accept": "text/html"})
    form = browser.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None
    signed = browser.post("/login", data={"name": name, "password": PASSWORD, "csrf_token": token.group(1)})
    assert signed.status_code == 303, signed.text
    return browser


def _csrf(page: str) -> str:
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None, "the page has no CSRF token"
    return token.group(1)


def test_a_browser_signs_in_applies_and_a_steward_approves_with_forms(node: Node) -> None:
    with closing(_signed_in_browser(node, "rita")) as rita, closing(_signed_in_browser(node, "dora")) as dora:
        page = rita.get(f"/studies/{node.study}").text
        assert "Apply for access" in page and "rita" in page
        form = {
            "csrf_token": _csrf(page),
            "title": "Breast tumour shapes",
            "use": "DS",
            "diseases": CANCER,
            "ethics_approval": "ERB-9",
            "accepts": "PUB",
        }
        assert rita.post(f"/studies/{node.study}/access-requests", data=form).status_code == 303
        requests_page = dora.get("/access-requests").text
        assert "Breast tumour shapes" in requests_page and "from rita" in requests_page
        request_id = re.search(r'action="/access-requests/([^/]+)/approve"', requests_page)
        assert request_id is not None
        forged = dora.post(f"/access-requests/{request_id.group(1)}/approve", data={"csrf_token": "forged"})
        assert forged.status_code == 403
        missing = dora.post(f"/access-requests/{request_id.group(1)}/approve")
        assert missing.status_code == 403
        assert rita.get(f"/api/images/{node.image}").status_code == 404
        approved = dora.post(
            f"/access-requests/{request_id.group(1)}/approve", data={"csrf_token": _csrf(requests_page)}
        )
        assert approved.status_code == 303
        assert rita.get(f"/api/images/{node.image}").status_code == 200
        assert node.image in rita.get(f"/studies/{node.study}").text

        refused = rita.post(
            f"/studies/{node.study}/access-requests", data={**form, "csrf_token": _csrf(page)}
        )
        assert refused.status_code == 403 and "you may read it already" in refused.text

        home = rita.get("/").text
        assert rita.post("/logout", data={"csrf_token": _csrf(home)}).status_code == 303
        assert rita.get(f"/api/images/{node.image}").status_code == 404  # the session ended


def test_the_session_cookie_is_httponly_and_samesite_and_holds_no_stored_secret(node: Node) -> None:
    browser = httpx.Client(base_url=node.url, timeout=30)
    token = _csrf(browser.get("/login").text)
    response = browser.post("/login", data={"name": "rita", "password": PASSWORD, "csrf_token": token})
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith("fairimage_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    secret = cookie.split(";")[0].split("=", 1)[1]
    catalog = (node.repo / "catalog.sqlite").read_bytes() + b"".join(
        path.read_bytes() for path in node.repo.glob("catalog.sqlite-*")
    )
    assert secret.encode() not in catalog


def test_login_without_its_form_token_is_refused(node: Node) -> None:
    with httpx.Client(base_url=node.url, timeout=30) as client:
        response = client.post("/login", data={"name": "rita", "password": PASSWORD, "csrf_token": "x"})
        assert response.status_code == 403 and "fairimage_session" not in response.headers.get(
            "set-cookie", ""
        )


def test_password_guessing_is_throttled(node: Node) -> None:
    with httpx.Client(base_url=node.url, timeout=30) as client:
        statuses = []
        for attempt in range(7):
            token = _csrf(client.get("/login").text)
            password = PASSWORD if attempt == 6 else f"guess {attempt}"
            response = client.post("/login", data={"name": "rita", "password": password, "csrf_token": token})
            statuses.append(response.status_code)
        assert statuses[:5] == [403] * 5
        assert statuses[5:] == [429, 429]  # even the right password waits
        assert "too many failed sign-ins" in response.text
    denied = [
        entry for entry in _audit(node) if entry.action == "session.sign_in" and entry.decision == "denied"
    ]
    assert len(denied) == 5
    assert all(PASSWORD not in str(entry.details) for entry in _audit(node))


def test_the_cli_applies_lists_and_decides(node: Node) -> None:
    repo = ["--repo", str(node.repo)]
    check = run_cli(
        "access",
        "request",
        "Tumour slides",
        "--user",
        "mallory",
        "--title",
        "Ancestry",
        "--use",
        "POA",
        "--check",
        *repo,
    )
    assert check.returncode == 0 and "refused" in check.stdout and "DS: only research on" in check.stdout
    refused = run_cli(
        "access",
        "request",
        "Tumour slides",
        "--user",
        "mallory",
        "--title",
        "Ancestry",
        "--use",
        "POA",
        *repo,
    )
    assert refused.returncode == 3 and refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    applied = run_cli(
        "access",
        "request",
        "Tumour slides",
        "--user",
        "mallory",
        "--title",
        "Tumours",
        "--use",
        "DS",
        "--disease",
        CANCER,
        "--ethics-approval",
        "ERB-1",
        "--accept",
        "PUB",
        "--json",
        *repo,
        check=True,
    )
    request_id = re.search(r'"id": "(request-[0-9a-f]+)"', applied.stdout)
    assert request_id is not None
    listed = run_cli("access", "list", "--state", "submitted", *repo, check=True)
    assert "mallory" in listed.stdout
    denied = run_cli(
        "access", "deny", request_id.group(1), "--note", "no collaboration agreement", *repo, check=True
    )
    assert "denied" in denied.stdout
    no_note = run_cli("access", "deny", request_id.group(1), *repo)
    assert no_note.returncode == 2 and "--note" in no_note.stderr


def _audit(node: Node) -> list[audit.Entry]:
    repository = open_repository(load_settings(node.repo))
    try:
        return list(audit.entries(repository))
    finally:
        repository.close()
