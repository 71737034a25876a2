"""The repository as a Model Context Protocol server, for AI agents (``fairimage mcp``, over stdio): search,
studies and their REMBI metadata, images, thumbnails and rendered regions, datasets for machine learning,
plate QC, consent checks and access requests.

Each call acts as one caller, the holder of the API token (or share link) the server was started with, else
anonymous, and goes through the same services as the HTTP API: the one access check decides what is found
and read, reads of protected data are audited, and what the caller may not read does not exist."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, replace
from typing import Any, TypeVar

from mcp.server.mcpserver import Image, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from fairimage import __version__
from fairimage.model.errors import FairimageError
from fairimage.model.governance.duo import ResearchPurpose
from fairimage.model.governance.policy import ANONYMOUS, Principal
from fairimage.services.curation import study_metadata
from fairimage.services.datasets import datasets
from fairimage.services.discovery import images, search
from fairimage.services.governance import access_requests, accounts
from fairimage.services.models import models
from fairimage.services.qc import plates as qc
from fairimage.services.repository import Repository
from fairimage.services.sharing import links
from fairimage.services.viewing.tiles import Renderer, render, thumbnail

T = TypeVar("T")
INSTRUCTIONS = (
    "A fairimage repository of FAIR bioimage data (OME-Zarr, REMBI metadata). Search images with "
    "search_images, read a study's metadata with get_study, look at an image with get_thumbnail or a part "
    "of it with get_region, find training data with list_datasets and get_dataset. Restricted "
    "studies can be found but not read: check a research purpose against their consent with assess_access "
    "and apply with request_access. Everything you read is what your token may read, and is audited."
)


def caller_for(repository: Repository, secret: str | None) -> Principal:
    """Who the agent acts as: the holder of ``secret`` (an API token or a share link), else anonymous."""
    if not secret:
        return ANONYMOUS
    if links.is_share_secret(secret):
        principal = links.principal_for_link(repository, secret, origin="mcp")
    else:
        principal = accounts.principal_for_token(repository, secret)
    return replace(principal, origin="mcp")


def build_server(repository: Repository, principal: Principal) -> MCPServer:
    """The MCP server of ``repository``, every tool acting as ``principal``."""
    server = MCPServer(name="fairimage", version=__version__, instructions=INSTRUCTIONS)
    renderer = Renderer(repository)

    @server.tool()
    def search_images(
        query: str = "", filters: dict[str, list[str]] | None = None, limit: int = 20
    ) -> dict[str, Any]:
        """Images whose metadata matches every word of ``query`` (ontology-aware: 'confocal' finds FBbi's
        confocal methods, 'HeLa' the cell line) and every facet filter, e.g. {"organism": ["Homo sapiens"],
        "imaging_method": ["confocal microscopy"]}, best first, with facet counts."""
        return _answer(lambda: search.search(repository, principal, query, filters or {}, limit).to_dict())

    @server.tool()
    def list_studies() -> list[dict[str, Any]]:
        """Every study you may see, with its policy, its number of images and whether you may read it."""
        return _answer(
            lambda: [s.model_dump(mode="json") for s in images.list_studies(repository, principal)]
        )

    @server.tool()
    def get_study(study: str) -> dict[str, Any]:
        """A study's REMBI metadata (by id or name), its metadata problems and FAIR score; the image data
        part only where you may read the study."""
        return _answer(lambda: study_metadata.get_metadata(repository, principal, study).to_dict())

    @server.tool()
    def get_image(image_id: str) -> dict[str, Any]:
        """One image: axes, shape, pixel type, physical pixel sizes, channels, pyramid levels, its original
        file and what the file said of its acquisition."""
        return _answer(lambda: images.get_image(repository, principal, image_id).model_dump(mode="json"))

    @server.tool()
    def get_thumbnail(image_id: str, size: int = 256) -> Image:
        """The whole image (middle z, first t, default channels and contrast) fitted into size x size, PNG."""
        picture = _answer(lambda: thumbnail(renderer, principal, image_id, size))
        return Image(data=picture.content, format="png")

    @server.tool()
    def get_region(
        image_id: str, x: int, y: int, width: int, height: int, size: int = 512, z: int | None = None
    ) -> Image:
        """A region of an image (x, y, width, height in full-resolution pixels; plane z, default the middle)
        rendered with its default channels and contrast, fitted into size x size (never enlarged), PNG:
        read from the pyramid level that matches, so a large region costs no more than a small one."""
        region = f"{x},{y},{width},{height}"
        picture = _answer(lambda: render(renderer, principal, image_id, {"z": z}, region=region, size=size))
        return Image(data=picture.content, format="png")

    @server.tool()
    def list_datasets() -> list[dict[str, Any]]:
        """Datasets for machine learning you may read (every study in them readable by you): name, version,
        studies, how they were split, items per split, what was left out."""
        return _answer(lambda: [asdict(found) for found in datasets.list_datasets(repository, principal)])

    @server.tool()
    def get_dataset(name: str, version: int | None = None) -> dict[str, Any]:
        """One dataset version (default the latest): every item (image id, label id, split, group, stratum,
        pixel hash, AI-generated or not); load its pixels with fairimage.ml or the images' OME-Zarr URLs."""
        return _answer(lambda: asdict(datasets.get_dataset(repository, principal, name, version)))

    @server.tool()
    def list_models() -> list[dict[str, Any]]:
        """Registered trained models, newest first: each card (task, intended use, limitations, metrics,
        weights) and the dataset versions it was trained and evaluated on, as you may see them (one you may
        not read is never named, only said not public, with its consent terms)."""
        return _answer(lambda: [models.summary(found) for found in models.list_models(repository, principal)])

    @server.tool()
    def get_model(model: str) -> dict[str, Any]:
        """One model's card, by its id, NAME@VERSION or NAME (its newest version)."""
        return _answer(lambda: models.summary(models.get_model(repository, principal, model)))

    @server.tool()
    def get_plate_qc(plate_id: str) -> dict[str, Any]:
        """The latest quality-control report of a screening plate: Z'-factor, SSMD, plate flags, and every
        field's measures and flags (empty, dark, saturated, blurred, outliers)."""
        return _answer(lambda: qc.latest_report(repository, principal, plate_id))

    @server.tool()
    def assess_access(study: str, title: str, use: str = "HMB", description: str = "") -> dict[str, Any]:
        """What a restricted study's consent terms (GA4GH DUO) say of a research purpose, without applying:
        ``use`` is GRU (any research), HMB (health/medical/biomedical), DS or POA."""
        purpose = ResearchPurpose(title=title, use=use, description=description)
        match = _answer(lambda: access_requests.assess(repository, principal, study, purpose))
        return {
            "decision": str(match.decision),
            "reasons": list(match.reasons),
            "conditions": list(match.conditions),
        }

    @server.tool()
    def request_access(study: str, title: str, use: str = "HMB", description: str = "") -> dict[str, Any]:
        """Apply for access to a restricted study with a research purpose (needs a token with write scope);
        its owner or a data steward decides."""
        purpose = ResearchPurpose(title=title, use=use, description=description)
        made = _answer(lambda: access_requests.submit(repository, principal, study, purpose))
        return {
            "id": made.id,
            "study": made.study,
            "state": str(made.state),
            "decision": str(made.assessment.decision),
        }

    return server


def _answer(call: Callable[[], T]) -> T:
    """The call's result, or the one-line message of what went wrong as the tool's error."""
    try:
        return call()
    except FairimageError as exc:
        raise ToolError(exc.message) from None
