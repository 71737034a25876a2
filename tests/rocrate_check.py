"""Validate an RO-Crate with roc-validator, offline: run by the tests in their own environment
(``.venv-rocrate``, made by ``make test``), as ``python tests/rocrate_check.py CRATE PROFILE``.

roc-validator fetches the RO-Crate JSON-LD context over HTTP. These machines reach no such host, so its
HTTP cache is filled first with the context that ro-crate-py ships (``rocrate/data/ro-crate.jsonld``, the
RO-Crate 1.3 context) and the validator runs in its offline mode. Prints the issues as JSON lines and
exits 0 if the crate conforms, 1 if not.
"""

from __future__ import annotations

import io
import json
import sys
import tempfile
from importlib import resources
from pathlib import Path

import requests
from requests_cache import CachedSession
from urllib3.response import HTTPResponse

CONTEXTS = ("https://w3id.org/ro/crate/1.3/context",)


def fill_cache(cache: Path) -> None:
    context = resources.files("rocrate").joinpath("data/ro-crate.jsonld").read_bytes()
    session = CachedSession(cache_name=str(cache), backend="sqlite", expire_after=-1)
    for url in CONTEXTS:
        response = requests.Response()
        response.status_code = 200
        response._content = context
        response.url = url
        response.encoding = "utf-8"
        response.headers["Content-Type"] = "application/ld+json"
        response.request = requests.Request("GET", url).prepare()
        response.raw = HTTPResponse(
            body=io.BytesIO(context), headers=dict(response.headers), status=200, preload_content=False
        )
        response.raw._request_url = url
        session.cache.save_response(response)


def main() -> int:
    crate, profile = Path(sys.argv[1]), sys.argv[2]
    from rocrate_validator import models, services

    with tempfile.TemporaryDirectory() as folder:
        cache = Path(folder) / "http-cache"
        fill_cache(cache)
        settings = models.ValidationSettings(
            rocrate_uri=str(crate),
            profile_identifier=profile,
            requirement_severity=models.Severity.REQUIRED,
            offline=True,
            cache_path=cache,
        )
        result = services.validate(settings)
        for issue in result.get_issues():
            check, message = issue.check.identifier, issue.message
            print(json.dumps({"severity": str(issue.severity), "check": check, "message": message}))
        print(json.dumps({"passed": result.passed(), "profile": profile}))
        return 0 if result.passed() else 1


if __name__ == "__main__":
    sys.exit(main())
