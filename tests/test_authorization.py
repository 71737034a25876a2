"""The authorization matrix: every GET route x every kind of caller x every policy state, generated from
the app's route table, so a new endpoint cannot be forgotten. A caller who may not read a study gets 404
from every route that names its data, and listings never mention it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tifffile

from fairimage.api import create_app
from fairimage.model.governance.policy import Role, Scope, operator
from fairimage.model.viewing.correlative import MemberSpec, SetSpec
from fairimage.services.datasets.datasets import DatasetRequest, create_dataset
from fairimage.services.discovery import images
from fairimage.services.governance import accounts, policies
from fairimage.services.ingest.intake import ingest_paths
from fairimage.services.models.models import register_model
from fairimage.services.plates.ingest import PlateRequest, ingest_plate
from fairimage.services.qc.plates import run_plate_qc
from fairimage.services.repository import init_repository
from fairimage.services.viewing import correlative
from fairimage.settings import load_settings
from tests import samples
from tests.conftest import LiveServer

# "quarantined": a public study holding a DICOM image that may show burned-in text, not yet cleared.
STATES = ("public", "embargo-over", "embargoed", "restricted", "private", "quarantined")
CALLERS = ("anonymous", "stranger", "granted", "owner", "steward", "admin")
READERS_OF_PROTECTED = {"granted", "owner", "steward", "admin"}
# Routes that serve no study data: the API description and its viewers, and the static files.
# Sign-in with an identity provider, too (tests/test_oidc.py): it sends the browser on, or signs it in.
INFRASTRUCTURE = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/static", "/login"}
INFRASTRUCTURE |= {"/auth/oidc/login", "/auth/oidc/callback"}
# What other nodes read: the node document, the audit log's checkpoints and consistency proofs and the
# peers' checkpoints witnessed here (hashes and signatures, no study data; tests/test_federation.py), and
# the change feed, which shows every caller what anonymous may see (a test below).
FEDERATION = {
    "/.well-known/fairimage-node",
    "/federation/changes",
    "/federation/checkpoint",
    "/federation/consistency",
    "/federation/witnessed",
    "/federation/mirror-sources/{object_id}",
}
# Routes that serve no study data: the bundled vocabularies and service descriptions (whose counts are
# checked by tests/test_drs.py).
VOCABULARIES = {
    "/api/ontologies",
    "/api/ontologies/duo/terms",
    "/api/ontologies/{name}/terms",
    "/api/ontologies/{name}/terms/{term_id:path}",
    "/ga4gh/drs/v1/service-info",
    "/api/analyses",  # the node's allow-list of analyses
}
# Routes about a caller's own things: access requests, checked by tests/test_access_requests.py, and the
# jobs they started (tests/test_jobs.py, test_qc.py: another caller's job is a 404).
PERSONAL = {
    "/api/access-requests",
    "/api/access-requests/{request_id}",
    "/access-requests",
    "/api/jobs/{job_id}",
    "/s/{secret}",  # a share link opened by whoever holds it: tests/test_sharing.py
    "/api/analysis-runs/{run_id}",  # one's own analysis runs, and those one reviews: tests/test_analyses.py
}
# Routes about people and permissions, answered by role, checked by tests/test_admin_api.py, and a study's
# share links, for those who govern it (tests/test_sharing.py).
ADMINISTRATION = {
    "/api/users",
    "/api/tokens",
    "/tokens",  # one's own tokens (tests/test_oidc.py)
    "/tokens/{token_id}/revoke",
    "/api/groups",
    "/api/grants",
    "/api/studies/{study_id}/share-links",
}
# Model cards are public records; what one says of the data the model learnt from depends on the reader
# (test_model_cards_name_only_the_datasets_the_caller_may_read below).
MODEL_CARDS = {
    "/api/models",
    "/models",
    "/api/models/{model_id}",
    "/api/models/{model_id}/jsonld",
    "/api/models/{model_id}/files/{name}",
    "/models/{model_id}",
}
# Routes that show a study's record (name, description, consent terms), which restricted studies show to
# everyone so that they can be found and requested; every other route serves images and follows may_read.
STUDY_RECORDS = {
    "/",
    "/api/studies",
    "/api/studies/{study_id}",
    "/studies/{study_id}",
    "/api/studies/{study_id}/metadata",
    "/api/studies/{study_id}/fair-score",
    "/api/studies/{study_id}/jsonld",
    "/api/studies/{study_id}/export/{kind}",
    "/oai",
}
# How to fill each path parameter for one study's image; a route with a parameter not listed here fails
# the test until the matrix learns it.
PARAMETERS = {
    "key": "zarr.json",
    "level": "0",
    "column": "0",
    "row": "0",
    "format": "png",
    "region": "full",
    "size": "max",
    "rotation": "0",
    "quality_format": "default.png",
    "access_id": "https",
    "kind": "datacite",
    "number": "1",
}
# Required query parameters of item routes.
QUERIES = {
    "/api/studies/{study_id}/diff": "?before=1&after=1",
    "/api/qc/plates": "?z_prime_below=2",  # every finite Z' (it is at most 1)
    "/api/qc/images": "?flag=empty",  # the matrix's plates are constant fields: every one is empty
    "/oai": "?verb=ListIdentifiers&metadataPrefix=oai_dc",
    "/api/images/{image_id}/orthogonal": "?view=xz",  # the matrix's pictures are 2D: one row
}


@dataclass
class World:
    url: str
    tokens: dict[str, str]
    studies: dict[str, str] = field(default_factory=dict)  # state -> study id
    images: dict[str, str] = field(default_factory=dict)  # state -> image id
    dicom_images: dict[str, str] = field(default_factory=dict)  # state -> a DICOM image's id
    files: dict[str, str] = field(default_factory=dict)  # state -> original file id
    plates: dict[str, str] = field(default_factory=dict)  # state -> a plate's id (with a QC report)
    datasets: dict[str, str] = field(default_factory=dict)  # state -> a dataset's name, over that study
    models: dict[str, str] = field(default_factory=dict)  # state -> a model trained on that dataset
    correlative: dict[str, str] = field(default_factory=dict)  # state -> a set: the picture over the DICOM
    routes: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    paths: set[str] = field(default_factory=set)  # every path the app answers

    def headers(self, caller: str) -> dict[str, str]:
        return {} if caller == "anonymous" else {"Authorization": f"Bearer {self.tokens[caller]}"}


def get_routes(app: Any) -> list[tuple[str, set[str]]]:
    """Every (path, methods) the app answers, looking inside included routers."""
    found: list[tuple[str, set[str]]] = []

    def walk(routes: list[Any]) -> None:
        for route in routes:
            if hasattr(route, "original_router"):
                walk(route.original_router.routes)
            elif hasattr(route, "path"):
                found.append((route.path, set(getattr(route, "methods", None) or [])))

    walk(app.routes)
    return found


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("authz")
    settings = load_settings(root / "repo")
    repository = init_repository(settings)
    admin = operator("test")
    users = {
        "stranger": Role.VIEWER,
        "granted": Role.VIEWER,
        "owner": Role.SUBMITTER,
        "steward": Role.STEWARD,
        "admin": Role.ADMIN,
    }
    tokens = {}
    for name, role in users.items():
        accounts.add_user(repository, admin, name, role)
        scope = Scope.ADMIN if role is Role.ADMIN else Scope.READ
        tokens[name] = accounts.create_token(repository, admin, name, scope).secret
    world = World(url="", tokens=tokens)
    for index, state in enumerate(STATES):
        picture = np.full((20, 30), 10 * index + 5, np.uint8)  # distinct content: no deduplication
        path = samples.png(root / f"{state}.png", picture)
        (outcome,) = ingest_paths(repository, [path], study=f"study {state}")
        world.images[state] = outcome.images[0]
        world.files[state] = outcome.file_id
        dicom_file = samples.dicom_ct(
            root / f"{state}.dcm", index, modality="US" if state == "quarantined" else "CT"
        )
        (dicom,) = ingest_paths(repository, [dicom_file], study=f"study {state}")
        world.dicom_images[state] = dicom.images[0]
        study = f"study {state}"
        identity = MemberSpec(
            image=outcome.images[0], modality="LM", matrix=((1, 0, 0), (0, 1, 0), (0, 0, 1))
        )
        spec = SetSpec(name="overlay", reference=dicom.images[0], members=(identity,))
        world.correlative[state] = correlative.create_set(repository, admin, study, spec).id
        policies.set_owner(repository, admin, study, "owner")
        if state == "embargo-over":
            policies.set_policy(repository, admin, study, "embargoed", datetime.now(UTC) - timedelta(days=1))
        elif state == "embargoed":
            policies.set_policy(repository, admin, study, "embargoed", datetime.now(UTC) + timedelta(days=30))
        elif state in ("restricted", "private"):
            policies.set_policy(repository, admin, study, state)
        if state not in ("public", "embargo-over"):
            policies.add_grant(repository, admin, study, "granted")  # a grant does not open a quarantine
        world.studies[state] = images.get_study(repository, admin, study).id
        world.plates[state] = _plate(repository, root / f"plate-{state}", study, index)
        world.datasets[state] = f"ds-{state}"
        create_dataset(repository, admin, DatasetRequest(f"ds-{state}", (study,), "100/0/0"))
        card = root / f"model-{state}.yaml"
        card.write_text(f"name: model {state}\ntrained_on: ['ds-{state}:1']\n")
        world.models[state] = register_model(repository, admin, card).id
    repository.close()
    table = get_routes(create_app(settings))
    world.paths = {path for path, _ in table}
    world.routes = sorted(
        {
            (method, path)
            for path, methods in table
            for method in methods & {"GET", "HEAD"}
            if path
            not in INFRASTRUCTURE | VOCABULARIES | PERSONAL | ADMINISTRATION | MODEL_CARDS | FEDERATION
        }
    )
    with LiveServer(settings) as server:
        world.url = server.url
        yield world


def _plate(repository: Any, folder: Path, study: str, index: int) -> str:
    """A four-well plate (two negative, two positive controls) in ``study``, with its QC report."""
    folder.mkdir()
    for column in range(4):
        pixels = np.full((16, 16), 100 + 10 * index + (50 if column > 1 else 0) + column, np.uint16)
        tifffile.imwrite(folder / f"P{index}_A{column + 1:02d}_s1_w1.tif", pixels)
    platemap = folder.with_suffix(".csv")
    platemap.write_text("well,control\nA1,negative\nA2,negative\nA3,positive\nA4,positive\n")
    outcome = ingest_plate(repository, PlateRequest(folder, study, platemap=platemap))
    assert outcome.plate_id is not None, outcome.error
    run_plate_qc(repository, operator("test"), outcome.plate_id)
    return outcome.plate_id


def _may_read(caller: str, state: str) -> bool:
    if state == "quarantined":
        return caller in {"owner", "steward", "admin"}
    return state in ("public", "embargo-over") or caller in READERS_OF_PROTECTED


def _may_see(caller: str, state: str, route: str) -> bool:
    """What ``route`` shows ``caller`` of a study in ``state``: records of restricted studies are public."""
    return _may_read(caller, state) or (route in STUDY_RECORDS and state == "restricted")


def _fill(route: str, world: World, state: str) -> list[str]:
    """The URLs that ask ``route`` for the study in ``state``: one, or one per kind of object a
    parameter can name (a PID names an image, a file or a version; study PIDs show records, which
    test_versions.py checks)."""
    image = world.dicom_images[state] if route.endswith("/dicom") else world.images[state]
    values = {
        **PARAMETERS,
        "image_id": image,
        "study_id": world.studies[state],
        "object_id": f"{image}~zarr.json",
        "plate_id": world.plates[state],
        "set_id": world.correlative[state],
        "name": world.datasets[state],  # /api/datasets/{name}: a dataset over the study
        "version": "1",
        "document": "croissant.json",
    }
    names = re.findall(r"{(\w+)(?::\w+)?}", route)
    if "pid" in names:
        pids = [image, world.files[state], f"{world.studies[state]}.v1"]
        return [route.replace("{pid}", pid) for pid in pids]
    if route.startswith("/zarr/"):  # the same route serves plates: their group documents and fields
        plate = route.replace("{image_id}", world.plates[state])
        urls = [plate.replace("{key:path}", key) for key in ("zarr.json", "A/1/zarr.json", "A/1/0/zarr.json")]
        return [re.sub(r"{(\w+)(?::\w+)?}", lambda m: values[m.group(1)], route), *urls]
    unknown = [name for name in names if name not in values]
    assert not unknown, f"route {route} has parameters {unknown} the authorization matrix does not know"
    filled = re.sub(r"{(\w+)(?::\w+)?}", lambda m: values[m.group(1)], route)
    return [filled + QUERIES.get(route, "")]


def test_the_matrix_covers_every_data_route(world: World) -> None:
    """The list below is not the source of truth (the route table is); it makes an addition visible."""
    item_routes = [route for _, route in world.routes if "{" in route]
    assert len(item_routes) >= 26, item_routes  # 25 GET routes and the zarr HEAD route, so far
    for route in item_routes:
        assert any(
            name in route
            for name in ("{image_id}", "{study_id}", "{object_id}", "{pid}", "{plate_id}", "{set_id}")
        ) or route.startswith("/api/datasets/{name}"), f"{route}: no study or image to check access on"


@pytest.mark.parametrize("caller", CALLERS)
def test_every_item_route_admits_exactly_the_readers(world: World, caller: str) -> None:
    checked = 0
    failures = []
    with httpx.Client(base_url=world.url, headers=world.headers(caller), timeout=30) as client:
        for method, route in (r for r in world.routes if "{" in r[1]):
            for state in STATES:
                for url in _fill(route, world, state):
                    response = client.request(method, url, follow_redirects=False)
                    allowed = _may_see(caller, state, route)
                    ok = response.status_code < 400 if allowed else response.status_code == 404
                    if not ok:
                        failures.append(f"{caller} {state} {method} {url}: {response.status_code}")
                    checked += 1
    assert not failures, "\n".join(failures)
    assert checked >= 21 * len(STATES)


@pytest.mark.parametrize("caller", CALLERS)
def test_listings_show_exactly_what_the_caller_may_read(world: World, caller: str) -> None:
    with httpx.Client(base_url=world.url, headers=world.headers(caller), timeout=30) as client:
        for _, route in (r for r in world.routes if "{" not in r[1] and r[0] == "GET"):
            text = client.get(route + QUERIES.get(route, "")).text
            for state in STATES:
                shown = world.studies[state] in text or world.images[state] in text
                allowed = _may_see(caller, state, route)
                expected = "shown" if allowed else "hidden"
                assert shown == allowed, f"{caller} {route}: the {state} study must be {expected}"
                if not _may_read(caller, state):
                    assert world.images[state] not in text, f"{caller} {route}: a {state} image shows"
                    assert world.dicom_images[state] not in text, f"{caller} {route}: a {state} image shows"
        total = client.get("/api/images").json()["total"]
        # a picture, a DICOM image and a plate's four fields per study the caller may read
        assert total == (2 + 4) * sum(_may_read(caller, state) for state in STATES)


@pytest.mark.parametrize("caller", CALLERS)
def test_model_cards_name_only_the_datasets_the_caller_may_read(world: World, caller: str) -> None:
    """Every model's card is there for everyone; the dataset it was trained on is named only to those who
    may read its study, and a study is named only to those who may find it (restricted ones: everyone)."""
    routes = {route for route in world.paths if "model" in route}
    assert routes == MODEL_CARDS, routes ^ MODEL_CARDS  # a new model route joins the list and this test
    with httpx.Client(base_url=world.url, headers=world.headers(caller), timeout=30) as client:
        listed = client.get("/api/models").json()["items"]
        assert len(listed) == len(STATES) and client.get("/models").status_code == 200
        for state in STATES:
            model = world.models[state]
            texts = []
            for url in (f"/api/models/{model}", f"/api/models/{model}/jsonld", f"/models/{model}"):
                response = client.get(url)
                assert response.status_code == 200, f"{caller} {state} {url}: {response.status_code}"
                texts.append(response.text)
            assert client.get(f"/api/models/{model}/files/card.yaml").status_code == 200
            (entry,) = [m for m in listed if m["id"] == model]
            texts.append(str(entry))
            for text in texts:
                named = f"ds-{state}" in text
                assert named == _may_read(caller, state), f"{caller}: {state} dataset named: {named}"
                if not _may_see(caller, state, "/api/studies/{study_id}"):
                    assert f"study {state}" not in text, f"{caller}: the {state} study is named"
            public = state in ("public", "embargo-over")
            assert entry["trained_on_public_data"] == public
            assert ("not public" in entry["training_data"]) == (not public)


@pytest.mark.parametrize("caller", CALLERS)
def test_the_change_feed_shows_everyone_what_anonymous_may_see(world: World, caller: str) -> None:
    """Peers harvest the feed into their own search, where anyone finds it: so it shows public studies,
    and restricted ones as records (a title and access conditions), whoever asks; never an image."""
    assert world.paths >= FEDERATION
    with httpx.Client(base_url=world.url, headers=world.headers(caller), timeout=30) as client:
        feed = client.get("/federation/changes", params={"limit": 500}).json()
        for state in STATES:  # what a mirror may copy: public images, whoever asks
            public = _may_read("anonymous", state)
            for object_id in (world.studies[state], world.images[state]):
                answer = client.get(f"/federation/mirror-sources/{object_id}")
                assert answer.status_code == (200 if public else 404), f"{caller} {state} {object_id}"
    assert not feed["more"]
    text = json.dumps(feed)
    for state in STATES:
        shown = world.studies[state] in text
        assert shown == _may_see("anonymous", state, "/oai"), f"{caller}: the {state} study shown: {shown}"
        assert world.images[state] not in text and world.dicom_images[state] not in text
    (restricted,) = [c for c in feed["changes"] if c["id"] == world.studies["restricted"]]
    assert restricted["study"]["access"] == "restricted" and restricted["study"]["description"] == ""
    assert restricted["groups"] == []


def test_bad_tokens_are_401_not_anonymous(world: World) -> None:
    for header in ("Bearer fi_not-a-token", "Bearer something", "Basic dXNlcjpwYXNz", "Bearer"):
        response = httpx.get(f"{world.url}/api/studies", headers={"Authorization": header})
        assert response.status_code == 401, header
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["error"]["code"] == "unauthorized"
