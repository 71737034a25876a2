"""The web pages: home, study and image (with the viewer), rendered on the server with Jinja2.

Everything but the viewer works without JavaScript: the image page's display form is a plain GET form,
and a <noscript> picture rendered by the server shows its settings. The same form lists the image's labels;
the multichannel viewer draws those switched on over the image."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from starlette.datastructures import QueryParams

from fairimage import __version__, ontology, web
from fairimage.api.deps import PrincipalDep, RepositoryDep, signed_in
from fairimage.api.schemas import ImageOut, LabelOut
from fairimage.api.security import VIEWER_POLICY
from fairimage.api.versions import VersionNumber
from fairimage.model.discovery import exports
from fairimage.model.errors import InvalidInputError
from fairimage.model.governance.policy import Principal
from fairimage.model.study import Image
from fairimage.model.viewing.neuroglancer import neuroglancer_state
from fairimage.model.viewing.render import ORTHOGONAL_VIEWS, default_plane, image_size, is_rgb, parse_region
from fairimage.services.curation import study_metadata
from fairimage.services.discovery import images as image_service
from fairimage.services.discovery import linked_data
from fairimage.services.governance import versions
from fairimage.services.labels import labels as label_service
from fairimage.services.plates import plates as plate_service
from fairimage.services.qc import plates as qc
from fairimage.services.repository import Repository
from fairimage.services.viewing import correlative, tiles

templates = Jinja2Templates(directory=web.TEMPLATES)
templates.env.globals["version"] = __version__
templates.env.globals["signed_in"] = signed_in
router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, repository: RepositoryDep, principal: PrincipalDep) -> HTMLResponse:
    studies = image_service.list_studies(repository, principal)
    context = {
        "studies": studies,
        "image_count": sum(study.image_count for study in studies),
        "recent": image_service.recent_images(repository, principal, limit=12),
    }
    return templates.TemplateResponse(request, "home.html", context)


@router.get("/studies/{study_id}", response_class=HTMLResponse)
def study_page(
    study_id: str,
    request: Request,
    repository: RepositoryDep,
    principal: PrincipalDep,
    after: str | None = None,
) -> HTMLResponse:
    return render_study(request, repository, principal, study_id, after)


def render_study(
    request: Request,
    repository: Repository,
    principal: Principal,
    study_id: str,
    after: str | None = None,
    application_error: str = "",
) -> HTMLResponse:
    """A study's page: its images, or (restricted, not granted) its consent terms and the application form."""
    study = image_service.get_study(repository, principal, study_id)
    images, next_page, history = [], None, []
    if study.may_read:
        page = image_service.list_images(repository, principal, study=study.id, limit=120, cursor=after)
        images, next_page = page.items, page.next
        history = versions.list_versions(repository, principal, study.id)
    context = {
        "plates": plate_service.list_plates(repository, principal, study.id) if study.may_read else [],
        "correlative": correlative.list_sets(repository, principal, study.id) if study.may_read else [],
        "study": study,
        "images": images,
        "next": next_page,
        "versions": history,
        "metadata": study_metadata.get_metadata(repository, principal, study.id, with_images=False),
        "jsonld": linked_data.study_dataset(repository, principal, study.id, str(request.base_url)),
        "duo": ontology.duo(),
        "application_error": application_error,
    }
    status = 403 if application_error else 200
    return templates.TemplateResponse(request, "study.html", context, status_code=status)


@router.get("/studies/{study_id}/versions/{number}", response_class=HTMLResponse)
def version_page(
    study_id: str, number: VersionNumber, request: Request, repository: RepositoryDep, principal: PrincipalDep
) -> HTMLResponse:
    """A version's landing page: what it holds, its checksum, how to cite it, what changed before it."""
    version = versions.get_version(repository, principal, study_id, number)
    changes = versions.diff(repository, principal, study_id, number - 1, number) if number > 1 else None
    pid = str(request.url_for("resolve_pid", pid=version.id))
    # "release", as "version" is the template global holding fairimage's version
    prefix = repository.settings.doi_prefix
    doi = exports.doi(prefix, version.study_id, version.number) if prefix and version.published_at else None
    cited = f"https://doi.org/{doi}" if doi else pid
    context = {
        "release": version,
        "changes": changes,
        "pid_url": pid,
        "doi": doi,
        "citation": version.citation(cited),
    }
    return templates.TemplateResponse(request, "version.html", context)


@router.get("/plates/{plate_id}", response_class=HTMLResponse)
def plate_page(
    plate_id: str, request: Request, repository: RepositoryDep, principal: PrincipalDep
) -> HTMLResponse:
    """A plate as a grid of wells: thumbnails of each well's first field, framed by its control type."""
    plate = plate_service.get_plate(repository, principal, plate_id)
    wells = {(well.row, well.column): well for well in plate.wells}
    overview = tiles.page_overview_size(len(plate.rows), len(plate.columns))
    thumb = overview or 48  # both from a low pyramid level
    context = {
        "plate": plate,
        "wells": wells,
        "imaged": sum(1 for well in plate.wells if well.images),
        "thumb": thumb,
        # More wells than a 384-well plate: one picture of every well (a request, not one per well) under
        # a map of links, instead of a thumbnail each.
        "overview": _overview_geometry(len(plate.rows), len(plate.columns), overview) if overview else None,
        "ome_zarr_url": f"{request.base_url}zarr/{plate.id}.ome.zarr",
        "qc": qc.latest_summary(repository, principal, plate.id),
        "heat": qc.well_heatmap(repository, principal, plate.id),
    }
    return templates.TemplateResponse(request, "plate.html", context)


def _overview_geometry(rows: int, columns: int, thumb: int) -> dict[str, int]:
    """Where the plate overview and its wells are drawn in the plate page's SVG (labels left and on top;
    every other column labelled where there are more than 24)."""
    cell = thumb + tiles.OVERVIEW_GAP
    left, top = 30, 16
    return {
        "cell": cell,
        "left": left,
        "top": top,
        "width": left + columns * cell + 2,
        "height": top + rows * cell + 2,
        "every": 2 if columns > 24 else 1,
    }


@router.get("/images/{image_id}", response_class=HTMLResponse)
def image_page(
    image_id: str, request: Request, repository: RepositoryDep, principal: PrincipalDep
) -> HTMLResponse:
    image = image_service.get_image(repository, principal, image_id)
    out = ImageOut.of(image, str(request.base_url))
    settings = form_settings(image, request.query_params)
    viewer = request.query_params.get("viewer")
    if viewer not in ("viv", "deepzoom"):
        viewer = "deepzoom" if _flat_picture(image) else "viv"
    base = str(request.base_url).rstrip("/")
    found = label_service.list_labels(repository, principal, image.id)
    labels = [LabelOut.of(label, str(request.base_url)) for label in found]
    context = {
        "image": out,
        "labels": labels,
        "overlays": overlay_settings(labels, request.query_params),
        "jsonld": linked_data.image_object(repository, principal, image.id, str(request.base_url)),
        "viewer": viewer,
        # A page whose viewer script would 404 says so and shows the server's picture instead.
        "missing_viewer": web.missing_viewer_files(),
        "settings": settings,
        "render_url": settings.picture_url(image.id),
        "snippets": snippets(out.ome_zarr_url or ""),
        "image_data": {
            "id": image.id,
            "name": image.name,
            "ome_zarr_url": out.ome_zarr_url,
            "deepzoom_url": f"{base}/api/images/{image.id}/deepzoom.dzi",
            "static_url": str(request.url_for("static", path="/")),
            "physical_sizes": out.model_dump()["physical_sizes"],
            "channels": [
                {"label": c.label, "color": c.color, "start": c.start, "end": c.end}
                for c in settings.channels
            ],
            "labels": [{"name": label.name, "ome_zarr_url": label.ome_zarr_url} for label in labels],
        },
    }
    response = templates.TemplateResponse(request, "image.html", context)
    if viewer == "viv":
        response.headers["Content-Security-Policy"] = VIEWER_POLICY
    return response


@router.get("/correlative-sets/{set_id}", response_class=HTMLResponse)
def correlative_page(
    set_id: str, request: Request, repository: RepositoryDep, principal: PrincipalDep
) -> HTMLResponse:
    """A correlative set: the members overlaid on the reference (opacity per member, the reference's z for
    volumes), each member's modality, colour and transform with its residual."""
    found = correlative.get_set(repository, principal, set_id)
    reference = image_service.get_image(repository, principal, found.reference_image_id)
    depth = image_size(reference, "z")
    z = min(max(0, int(_number(request.query_params.get("z"), depth // 2))), depth - 1)
    opacity = {
        member.image_id: round(
            min(100.0, max(0.0, _number(request.query_params.get(f"opacity_{member.image_id}"), 50)))
        )
        for member in found.members
    }
    width, height = image_size(reference, "x"), image_size(reference, "y")
    try:  # the region shown, kept in the address as the page zooms
        box = parse_region(request.query_params.get("region"), width, height)
    except InvalidInputError:
        box = parse_region(None, width, height)
    region = f"{box.x},{box.y},{box.width},{box.height}"
    query = urlencode(
        {
            "size": 1024,
            "z": z,
            "region": region,
            "opacity": ",".join(f"{image}:{value / 100:g}" for image, value in opacity.items()),
        }
    )
    context = {
        "set": found,
        "depth": depth,
        "z": z,
        "region": region,
        "whole": f"0,0,{width},{height}",
        "opacity": opacity,
        "overlay_url": f"/api/correlative-sets/{found.id}/overlay?{query}",
    }
    return templates.TemplateResponse(request, "correlative.html", context)


@router.get("/images/{image_id}/neuroglancer", response_class=HTMLResponse)
def neuroglancer_page(
    image_id: str, request: Request, repository: RepositoryDep, principal: PrincipalDep
) -> HTMLResponse:
    """The image in Neuroglancer (offline, from this server): orthogonal slices and 3D, labels as
    segmentation layers; for volumes above all."""
    image = image_service.get_image(repository, principal, image_id)
    out = ImageOut.of(image, str(request.base_url))
    found = label_service.list_labels(repository, principal, image.id)
    labels = [LabelOut.of(label, str(request.base_url)) for label in found]
    state = neuroglancer_state(
        image, out.ome_zarr_url or "", [(label.name, label.ome_zarr_url) for label in labels]
    )
    context = {"image": out, "state": state, "missing_viewer": web.missing_viewer_files()}
    return templates.TemplateResponse(request, "neuroglancer.html", context)


def not_found_page(request: Request, message: str) -> HTMLResponse:
    return templates.TemplateResponse(request, "not_found.html", {"message": message}, status_code=404)


@dataclass(frozen=True)
class ChannelSetting:
    index: int
    label: str
    color: str
    start: float
    end: float
    data_min: float
    data_max: float
    visible: bool


@dataclass(frozen=True)
class FormSettings:
    """The display form's state: the image's defaults, overridden by a submitted form's fields."""

    channels: tuple[ChannelSetting, ...]
    z: int
    t: int
    z_count: int
    t_count: int
    view: str = "xy"  # or an orthogonal view of a 3D image: xz (at row ``at``) or yz (at column ``at``)
    at: int = 0
    y_count: int = 1
    x_count: int = 1

    def picture_url(self, image_id: str) -> str:
        """The server's picture of what the form shows (the page without JavaScript shows it)."""
        if self.view == "xy":
            return f"/api/images/{image_id}/render?{self.render_query()}&size=1024"
        return (
            f"/api/images/{image_id}/orthogonal?view={self.view}&at={self.at}&{self.render_query()}&size=1024"
        )

    def render_query(self) -> str:
        shown = [c for c in self.channels if c.visible]
        query = {"z": self.z, "t": self.t, "c": ",".join(str(c.index) for c in shown)}
        if shown:
            query["colors"] = ",".join(c.color for c in shown)
            query["window"] = ",".join(f"{c.start:g}:{c.end:g}" for c in shown)
        return urlencode(query)


def form_settings(image: Image, query: QueryParams) -> FormSettings:
    """Fields ``c`` (repeated), ``color{i}``, ``start{i}``, ``end{i}``, ``z``, ``t``; a value that does not
    parse keeps the default, since a bookmarked URL should still open the image."""
    plane = default_plane(image)
    submitted = "z" in query or "t" in query or any(key.startswith("color") for key in query)
    visible = {value for value in query.getlist("c")} if submitted else None
    channels = []
    for rendering in plane.channels:
        i = rendering.index
        label = image.channels[i].label if i < len(image.channels) else f"Channel {i}"
        window = image.channels[i].window if i < len(image.channels) else None
        color = query.get(f"color{i}", "").removeprefix("#").upper()
        start = _number(query.get(f"start{i}"), rendering.start)
        end = _number(query.get(f"end{i}"), rendering.end)
        channels.append(
            ChannelSetting(
                index=i,
                label=label,
                color=color if _is_color(color) else rendering.color,
                start=start,
                end=end if end > start else rendering.end,
                data_min=window.min if window else rendering.start,
                data_max=window.max if window else rendering.end,
                visible=visible is None or str(i) in visible,
            )
        )
    z_count, t_count = image_size(image, "z"), image_size(image, "t")
    view = query.get("view", "xy") if z_count > 1 else "xy"
    view = view if view in ORTHOGONAL_VIEWS else "xy"
    cut_size = image_size(image, ORTHOGONAL_VIEWS[view][0]) if view != "xy" else 1
    return FormSettings(
        channels=tuple(channels),
        z=min(max(0, int(_number(query.get("z"), plane.z))), z_count - 1),
        t=min(max(0, int(_number(query.get("t"), plane.t))), t_count - 1),
        z_count=z_count,
        t_count=t_count,
        view=view,
        at=min(max(0, int(_number(query.get("at"), cut_size // 2))), cut_size - 1),
        y_count=image_size(image, "y"),
        x_count=image_size(image, "x"),
    )


DEFAULT_LABEL_OPACITY = 50  # percent: the objects' colours and the pixels under them both show


@dataclass(frozen=True)
class OverlaySettings:
    """Which labels the viewer draws over the image, and how opaque (percent)."""

    shown: frozenset[str]
    opacity: int


def overlay_settings(labels: Sequence[LabelOut], query: QueryParams) -> OverlaySettings:
    """Fields ``labels`` (repeated, or names joined by commas) and ``label_opacity``. None is shown unless
    named, since an overlay hides the pixels under it; a name the image has no label of is ignored."""
    names = {label.name for label in labels}
    asked = {name for value in query.getlist("labels") for name in value.split(",")}
    opacity = _number(query.get("label_opacity"), DEFAULT_LABEL_OPACITY)
    return OverlaySettings(shown=frozenset(asked & names), opacity=round(min(100.0, max(0.0, opacity))))


def snippets(url: str) -> list[dict[str, str]]:
    """One line each for opening the image in the tools microscopists use."""
    return [
        {"label": "napari", "code": f"napari --plugin napari-ome-zarr {url}"},
        {"label": "Neuroglancer (any, as a data source)", "code": f"zarr3://{url}/"},
        {"label": "zarr-python", "code": f'zarr.open_group("{url}", mode="r")["0"]'},
        {
            "label": "ome-zarr-py",
            "code": f'list(ome_zarr.reader.Reader(ome_zarr.io.parse_url("{url}"))())[0].data',
        },
    ]


def _flat_picture(image: Image) -> bool:
    """Colour pictures and single-channel 2D images are best seen as rendered deep-zoom tiles."""
    planes = image_size(image, "z") * image_size(image, "t")
    return planes == 1 and (is_rgb(image) or image_size(image, "c") == 1)


def _number(text: Any, default: float) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return default
    return value if value == value and abs(value) != float("inf") else default


def _is_color(text: str) -> bool:
    return len(text) == 6 and all(ch in "0123456789ABCDEF" for ch in text)
