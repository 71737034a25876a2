"""schemathesis against the live server's OpenAPI description, as an anonymous caller and a data steward
(a viewer's view lies between the two): no request it can generate gets a 5xx, and every answer matches
the documented schema and content type."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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
ST = str(Path(sys.executable).with_name("st"))


@dataclass
class Node:
    url: str
    tokens: dict[str, str]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    root = tmp_path_factory.mktemp("schemathesis")
    settings = load_settings(root / "repo")
    repository = init_repository(settings)
    stack = samples.ome_tiff(root / "stack.ome.tif", samples.ramp((2, 3, 40, 50)), axes="CZYX")
    picture = samples.png(root / "picture.png", np.full((20, 30, 3), 90, np.uint8))
    ingest_paths(repository, [stack], study="Open stacks")
    ingest_paths(repository, [picture], study="Controlled pictures")
    policies.set_policy(repository, ADMIN, "Controlled pictures", "restricted")
    policies.set_data_use(repository, ADMIN, "Controlled pictures", DataUse(permission="HMB"))
    tokens = {}
    for name, role in (("stan", Role.STEWARD),):
        accounts.add_user(repository, ADMIN, name, role)
        tokens[name] = accounts.create_token(repository, ADMIN, name, Scope.WRITE).secret
    repository.close()
    with LiveServer(settings) as server:
        yield Node(server.url, tokens)


# The steward reaches every route (reads and writes) in the default suite; the anonymous caller, whose
# requests mostly end in 401/404 (2,500 cases, two minutes), in the slow one.
@pytest.mark.parametrize("caller", [pytest.param("anonymous", marks=pytest.mark.slow), "stan"])
def test_no_5xx_and_no_schema_violation(node: Node, caller: str, tmp_path: Path) -> None:
    headers = [] if caller == "anonymous" else ["-H", f"Authorization: Bearer {node.tokens[caller]}"]
    result = subprocess.run(
        [
            ST,
            "run",
            f"{node.url}/openapi.json",
            "--checks",
            "not_a_server_error,response_schema_conformance,content_type_conformance",
            "--max-examples",
            "4",
            "--seed",
            "20261123",
            "--no-color",
            "--report",
            "junit",
            "--report-dir",
            str(tmp_path),
            *headers,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
    )
    summary = result.stdout[result.stdout.find("SUMMARY") :]
    Path("test-artifacts").mkdir(exist_ok=True)
    Path(f"test-artifacts/schemathesis-{caller}.txt").write_text(result.stdout)
    assert result.returncode == 0, result.stdout[-6000:]
    assert "generated" in summary and "failures" not in summary, summary
