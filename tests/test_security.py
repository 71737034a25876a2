"""Hardening as an attacker would probe it, over real HTTP: security headers, path traversal, malformed and
oversized bodies, token scopes, and bad credentials."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

from fairimage.model.governance.policy import Role, Scope, operator
from fairimage.services.governance import accounts, policies
from fairimage.services.ingest.intake import ingest_paths
from fairimage.services.repository import init_repository
from fairimage.settings import load_settings
from tests import samples
from tests.conftest import LiveServer

ADMIN = operator("test")


@dataclass
class Site:
    url: str
    image: str
    study: str
    read_token: str
    write_token: str


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("security")
    settings = load_settings(root / "repo")
    repository = init_repository(settings)
    path = samples.png(root / "cells.png", np.arange(600, dtype=np.uint8).reshape(20, 30))
    (outcome,) = ingest_paths(repository, [path], study="Open cells")
    accounts.add_user(repository, ADMIN, "olga", Role.SUBMITTER)
    policies.set_owner(repository, ADMIN, "Open cells", "olga")
    read = accounts.create_token(repository, ADMIN, "olga", Scope.READ).secret
    write = accounts.create_token(repository, ADMIN, "olga", Scope.WRITE).secret
    (root / "repo" / "secret.txt").write_text("not for the web")
    repository.close()
    with LiveServer(settings) as server, httpx.Client(base_url=server.url) as client:
        study = client.get("/api/studies").json()[0]["id"]
        yield Site(server.url, outcome.images[0], study, read, write)


def test_pages_carry_a_strict_content_security_policy(site: Site) -> None:
    for path in ("/", f"/studies/{site.study}", f"/images/{site.image}?viewer=deepzoom", "/login"):
        response = httpx.get(site.url + path)
        policy = response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy, path
        assert "unsafe-inline" not in policy and "'unsafe-eval'" not in policy, path
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
    viv = httpx.get(f"{site.url}/images/{site.image}?viewer=viv").headers["content-security-policy"]
    assert "'unsafe-eval'" in viv and "unsafe-inline" not in viv  # the viewer's wasm bindings need eval


def test_data_is_never_sniffed_into_something_else(site: Site) -> None:
    for path in (f"/zarr/{site.image}.ome.zarr/zarr.json", f"/api/images/{site.image}", "/api/studies"):
        response = httpx.get(site.url + path)
        assert response.status_code == 200
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "content-security-policy" not in response.headers  # not a page


@pytest.mark.parametrize(
    "path",
    [
        "/zarr/{image}.ome.zarr/../../secret.txt",
        "/zarr/{image}.ome.zarr/%2e%2e/%2e%2e/secret.txt",
        "/zarr/{image}.ome.zarr/..%2f..%2fsecret.txt",
        "/zarr/{image}.ome.zarr//etc/passwd",
        "/static/../secret.txt",
        "/static/%2e%2e/%2e%2e/repo/secret.txt",
    ],
)
def test_path_traversal_finds_nothing(site: Site, path: str) -> None:
    raw = path.format(image=site.image)
    with socket.create_connection(("127.0.0.1", int(site.url.rsplit(":", 1)[1])), timeout=10) as sock:
        sock.sendall(f"GET {raw} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    status = int(reply.split(b" ", 2)[1])
    assert status in (400, 404), (raw, status)
    assert b"not for the web" not in reply and b"root:" not in reply


def test_malformed_and_oversized_bodies_are_4xx_not_5xx(site: Site) -> None:
    headers = {"Authorization": f"Bearer {site.write_token}", "Content-Type": "application/json"}
    with httpx.Client(base_url=site.url, headers=headers, timeout=30) as client:
        assert client.post("/api/access-requests", content=b"{not json").status_code == 422
        assert client.post("/api/access-requests", content=b"[]").status_code == 422
        assert client.post("/api/access-requests", content=b'{"study": 1}').status_code == 422
        big = b'{"study": "x", "purpose": {"title": "' + b"a" * (2 << 20) + b'"}}'
        too_large = client.post("/api/access-requests", content=big)
        assert too_large.status_code == 413 and too_large.json()["error"]["code"] == "too_large"

        def chunks() -> Iterator[bytes]:
            for _ in range(40):
                yield b" " * 65536

        assert client.post("/api/access-requests", content=chunks()).status_code == 413
        deep = b"[" * 100_000 + b"]" * 100_000
        assert client.put(f"/api/studies/{site.study}/data-use", content=deep).status_code in (400, 413, 422)


def test_token_scopes_are_enforced(site: Site) -> None:
    terms = {"permission": "GRU"}
    read = httpx.put(
        f"{site.url}/api/studies/{site.study}/data-use",
        json=terms,
        headers={"Authorization": f"Bearer {site.read_token}"},
    )
    assert read.status_code == 403 and "scope is read" in read.json()["error"]["message"]
    write = httpx.put(
        f"{site.url}/api/studies/{site.study}/data-use",
        json=terms,
        headers={"Authorization": f"Bearer {site.write_token}"},
    )
    assert write.status_code == 200
    anonymous = httpx.put(f"{site.url}/api/studies/{site.study}/data-use", json=terms)
    assert anonymous.status_code == 403


def test_a_session_cookie_that_is_not_ours_is_anonymous_for_reads_and_401_for_writes(site: Site) -> None:
    cookies = {"fairimage_session": "forged"}
    with httpx.Client(base_url=site.url, cookies=cookies) as client:
        assert client.get("/api/studies").status_code == 200
        response = client.post("/api/access-requests", json={"study": "x", "purpose": {"title": "abc"}})
        assert response.status_code == 401


def test_after_sign_in_redirects_stay_on_this_site(site: Site) -> None:
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        page = httpx.get(f"{site.url}/login", params={"next": target}).text
        assert 'name="next" value="/"' in page, target


def test_uploads_directory_is_not_served(site: Site, tmp_path: Path) -> None:
    assert httpx.get(f"{site.url}/static/site.css").status_code == 200
    assert httpx.get(f"{site.url}/catalog.sqlite").status_code == 404
