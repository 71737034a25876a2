"""Request bodies are strict: a field an endpoint does not know is refused with 422 naming it, never
dropped, for every POST, PUT and PATCH route of the OpenAPI document, through a real server."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pytest

from fairimage.model.governance.duo import DataUse
from fairimage.model.governance.policy import Role, Scope, operator
from fairimage.services.governance import accounts, policies
from fairimage.services.ingest.intake import ingest_paths
from fairimage.services.repository import init_repository
from fairimage.settings import load_settings
from tests import samples
from tests.conftest import LiveServer

ADMIN = operator("test")
UNKNOWN = "surely_not_a_field"
# OAI-PMH reads its arguments from a form, as the protocol says, and answers an unknown one with its own
# badArgument error (tests/test_oai.py); it has no JSON body to be strict about.
PROTOCOL_ROUTES = {("post", "/oai")}
# The metadata validator's answer is its report (200): an unknown field is one of its errors.
VALIDATOR = ("post", "/api/metadata/validate")


@dataclass
class Node:
    url: str
    study: str
    headers: dict[str, str]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    root = tmp_path_factory.mktemp("strict")
    settings = load_settings(root / "repo")
    repository = init_repository(settings)
    picture = samples.png(root / "cells.png", np.full((20, 30), 90, np.uint8))
    ingest_paths(repository, [picture], study="Strict")
    policies.set_data_use(repository, ADMIN, "Strict", DataUse(permission="GRU"))
    accounts.add_user(repository, ADMIN, "ada", Role.ADMIN)
    secret = accounts.create_token(repository, ADMIN, "ada", Scope.ADMIN).secret
    repository.close()
    with LiveServer(settings) as server:
        studies = httpx.get(f"{server.url}/api/studies", headers={"Authorization": f"Bearer {secret}"}).json()
        yield Node(server.url, studies[0]["id"], {"Authorization": f"Bearer {secret}"})


def _operations(url: str) -> list[tuple[str, str, dict[str, Any]]]:
    spec = httpx.get(f"{url}/openapi.json").json()
    return [
        (method, path, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in ("post", "put", "patch") and (method, path) not in PROTOCOL_ROUTES
    ]


def _concrete(path: str, study: str) -> str:
    """A path with its parameters filled: the study's id where one is asked for, placeholders elsewhere."""
    return re.sub(
        r"\{(\w+)\}", lambda m: study if m[1] == "study_id" else "1" if m[1] == "number" else "x", path
    )


def test_every_write_route_refuses_an_unknown_body_field_by_name(node: Node) -> None:
    operations = _operations(node.url)
    assert len(operations) >= 20  # every route that takes a body, and those that take none
    for method, path, _ in operations:
        response = httpx.request(
            method, node.url + _concrete(path, node.study), json={UNKNOWN: 1}, headers=node.headers
        )
        where = f"{method.upper()} {path}"
        if (method, path) == VALIDATOR:
            problems = response.json()["problems"]
            assert {"path": UNKNOWN, "severity": "error"}.items() <= problems[0].items(), problems
            continue
        assert response.status_code == 422, f"{where}: {response.status_code} {response.text[:200]}"
        text = response.text
        assert UNKNOWN in text, f"{where} does not name the unknown field: {text[:300]}"


def test_an_unknown_field_is_named_in_one_line_with_the_fix(node: Node) -> None:
    response = httpx.post(
        f"{node.url}/api/groups", json={"name": "lab", "colour": "blue"}, headers=node.headers
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert (
        error["message"]
        == "body.colour: not a field of this endpoint, so it would not be set; remove it (see /docs)"
    )
    assert response.json()["detail"][0]["loc"] == ["body", "colour"]  # FastAPI's own list stays
    assert httpx.get(f"{node.url}/api/groups", headers=node.headers).json() == []  # nothing was made


def test_consent_terms_sent_to_the_policy_endpoint_are_refused_and_nothing_changes(node: Node) -> None:
    """The steward who sends DUO terms with the policy learns at once that they were not set."""
    policy_url = f"{node.url}/api/studies/{node.study}/policy"
    refused = httpx.put(policy_url, json={"policy": "restricted", "permission": "HMB"}, headers=node.headers)
    assert refused.status_code == 422
    assert "body.permission: not a field of this endpoint" in refused.json()["error"]["message"]
    study = httpx.get(f"{node.url}/api/studies/{node.study}", headers=node.headers).json()
    assert study["policy"] == "public"  # the policy was not half-applied either
    assert study["data_use"]["permission"] == "DUO:0000042"  # GRU, as it was

    refused = httpx.put(
        f"{node.url}/api/studies/{node.study}/data-use",
        json={"permission": "HMB", "policy": "restricted"},
        headers=node.headers,
    )
    assert refused.status_code == 422 and "body.policy" in refused.json()["error"]["message"]


def test_the_policy_and_consent_endpoints_say_what_they_do_not_set(node: Node) -> None:
    spec = httpx.get(f"{node.url}/openapi.json").json()
    policy = spec["paths"]["/api/studies/{study_id}/policy"]["put"]["description"]
    consent = spec["paths"]["/api/studies/{study_id}/data-use"]["put"]["description"]
    assert "does **not** set the study's consent terms" in policy and "/data-use" in policy
    assert "does **not** set who may read the study" in consent and "/policy" in consent


def test_operation_ids_are_unique(node: Node) -> None:
    spec = httpx.get(f"{node.url}/openapi.json").json()
    ids = [
        op["operationId"] for item in spec["paths"].values() for op in item.values() if "operationId" in op
    ]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


def test_an_endpoint_without_a_body_still_accepts_an_empty_one(node: Node) -> None:
    added = httpx.post(f"{node.url}/api/groups", json={"name": "imaging"}, headers=node.headers)
    assert added.status_code == 201
    member = httpx.put(f"{node.url}/api/groups/imaging/members/ada", headers=node.headers)
    assert member.status_code == 200 and "ada" in member.json()["members"]
    again = httpx.put(f"{node.url}/api/groups/imaging/members/ada", json={}, headers=node.headers)
    assert again.status_code == 200
