"""The MCP server as an AI agent uses it: the SDK's own client starts `fairimage mcp` over stdio against a
real repository; what the agent finds and reads is what its token may read, and reads are audited."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from mcp import Client, StdioServerParameters
from PIL import Image

from tests import samples
from tests.conftest import FAIRIMAGE, run_cli


def _repository(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    public = samples.png(tmp_path / "mitosis.png", samples.ramp((64, 80), "uint8", seed=1))
    private = samples.png(tmp_path / "biopsy.png", samples.ramp((64, 80), "uint8", seed=2))
    ids = {}
    for path, study in ((public, "Mitosis"), (private, "Biopsies")):
        (outcome,) = json.loads(
            run_cli("ingest", path, "--study", study, "--repo", repo, "--json", check=True).stdout
        )
        ids[study] = outcome["images"][0]
    run_cli("study", "policy", "Biopsies", "private", "--repo", repo, check=True)
    run_cli("user", "add", "ada", "--role", "viewer", "--repo", repo, check=True)
    run_cli("grant", "add", "Biopsies", "ada", "--repo", repo, check=True)
    ids["token"] = run_cli("token", "create", "ada", "--repo", repo, check=True).stdout.strip()
    run_cli("dataset", "create", "both", "--from", "Mitosis", "--from", "Biopsies", "--split", "50/50",
            "--repo", repo, check=True)  # fmt: skip
    card = tmp_path / "card.yaml"
    card.write_text("name: Mitosis finder\ntask: detection\ntrained_on: ['both:1']\n")
    run_cli("model", "register", card, "--repo", repo, check=True)
    return repo, ids


async def _session(repo: Path, token: str | None, calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("FAIRIMAGE_")}
    if token:
        env["FAIRIMAGE_TOKEN"] = token
    server = StdioServerParameters(command=FAIRIMAGE, args=["mcp", "--repo", str(repo)], env=env)
    async with Client(server) as client:
        tools = await client.list_tools()
        results: list[Any] = [sorted(tool.name for tool in tools.tools)]
        for name, arguments in calls:
            results.append(await client.call_tool(name, arguments))
        return results


def _json(result: Any) -> Any:
    assert not result.is_error, result.content
    if result.structured_content is not None:
        found = result.structured_content
        return found.get("result", found) if isinstance(found, dict) and set(found) == {"result"} else found
    return json.loads(result.content[0].text)


def test_an_agent_finds_and_reads_only_what_its_token_may(tmp_path: Path) -> None:
    repo, ids = _repository(tmp_path)
    calls = [
        ("search_images", {"query": ""}),
        ("get_image", {"image_id": ids["Biopsies"]}),
        ("get_thumbnail", {"image_id": ids["Mitosis"], "size": 64}),
        ("list_studies", {}),
        ("get_region", {"image_id": ids["Mitosis"], "x": 10, "y": 20, "width": 40, "height": 20, "size": 80}),
        ("list_datasets", {}),
        ("get_dataset", {"name": "both"}),
        ("list_models", {}),
    ]
    tools, found, hidden, picture, studies, region, no_datasets, no_dataset, model = asyncio.run(
        _session(repo, None, calls)
    )
    assert {
        "search_images",
        "get_study",
        "get_image",
        "get_thumbnail",
        "get_plate_qc",
        "request_access",
        "get_region",
        "list_datasets",
        "get_dataset",
        "list_models",
        "get_model",
    } <= set(tools)
    assert [hit["id"] for hit in _json(found)["hits"]] == [ids["Mitosis"]]
    assert hidden.is_error and f"image {ids['Biopsies']!r} not found" in hidden.content[0].text
    (content,) = picture.content
    drawn = np.asarray(Image.open(io.BytesIO(base64.b64decode(content.data))))
    assert content.mime_type == "image/png" and drawn.shape[1] == 64 and drawn.std() > 0
    assert [study["name"] for study in _json(studies)] == ["Mitosis"]
    (content,) = region.content
    cut = np.asarray(Image.open(io.BytesIO(base64.b64decode(content.data))))
    assert cut.shape[:2] == (20, 40)  # the 40 x 20 region, never enlarged
    assert _json(no_datasets) == []  # a dataset over a study the agent may not read does not exist
    assert no_dataset.is_error and "dataset 'both' not found" in no_dataset.content[0].text
    (card,) = _json(model)  # a model's card is public; the dataset it learnt from stays unnamed
    assert card["name"] == "Mitosis finder" and card["data"][0]["name"] is None
    assert card["training_data"] == "Trained on data that is not public: a study that is not public: private."

    tools, found, read, *_, listed, dataset, model = asyncio.run(_session(repo, ids["token"], calls))
    assert [(link["name"], link["version"]) for link in _json(model)[0]["data"]] == [("both", 1)]
    assert {hit["id"] for hit in _json(found)["hits"]} == {ids["Mitosis"], ids["Biopsies"]}
    assert _json(read)["id"] == ids["Biopsies"]
    assert [(d["name"], d["version"]) for d in _json(listed)] == [("both", 1)]
    assert {item["image_id"] for item in _json(dataset)["items"]} == {ids["Mitosis"], ids["Biopsies"]}
    log = json.loads(
        run_cli("audit", "log", "--action", "data.read", "--repo", repo, "--json", check=True).stdout
    )
    assert any(entry["actor"] == "ada" and entry["decision"] == "allowed" for entry in log), log
