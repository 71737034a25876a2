"""GA4GH DRS: images and studies as DRS bundles, their stored keys as blobs, each with size, sha-256 and an
HTTPS access URL. Every object passes the access service first (a study or image the caller may not read
is not found), and the access URLs are the OME-Zarr URLs, which check the caller again when fetched."""

from __future__ import annotations

from sqlalchemy import func, select

from fairimage import __version__
from fairimage.catalog import queries
from fairimage.catalog.tables import ImageRow, StudyRow
from fairimage.model.errors import NotFoundError
from fairimage.model.governance.drs import (
    AccessMethod,
    AccessURL,
    Checksum,
    ContentsObject,
    DrsObject,
    blob_id,
    bundle_checksum,
    drs_uri,
    split_blob_id,
)
from fairimage.model.governance.policy import Principal
from fairimage.services.governance import access
from fairimage.services.governance.fixity import load_manifest
from fairimage.services.repository import Repository

ACCESS_ID = "https"


def service_info(repository: Repository, principal: Principal, base_url: str) -> dict[str, object]:
    """GA4GH service-info for this DRS endpoint, with counts of what the caller may read."""
    with repository.reading() as session:
        count, size = session.execute(
            select(func.count(ImageRow.id), func.coalesce(func.sum(ImageRow.stored_bytes), 0))
            .join(StudyRow)
            .where(access.visible_images(principal))
        ).one()
    return {
        "id": "org.fairimage.drs",
        "name": "fairimage DRS",
        "type": {"group": "org.ga4gh", "artifact": "drs", "version": "1.5.0"},
        "description": "OME-Zarr images (bundles of their stored keys) and studies (bundles of images).",
        "organization": {"name": "fairimage node", "url": base_url},
        "documentationUrl": f"{base_url.rstrip('/')}/docs",
        "version": __version__,
        "drs": {"maxBulkRequestLength": 0, "objectCount": int(count), "totalObjectSize": int(size)},
    }


def get_object(
    repository: Repository,
    principal: Principal,
    object_id: str,
    host: str,
    base_url: str,
    expand: bool = False,
) -> DrsObject:
    """A DRS object by id: a study or image bundle, or one stored key of an image."""
    head, key = split_blob_id(object_id)
    if key is not None:
        return _blob(repository, principal, head, key, host, base_url)
    if head.startswith("study-"):
        return _study(repository, principal, head, host, expand)
    return _image(repository, principal, head, host)


def access_url(
    repository: Repository, principal: Principal, object_id: str, access_id: str, base_url: str
) -> AccessURL:
    """Where to fetch a blob's bytes over HTTPS (the same access check applies there)."""
    head, key = split_blob_id(object_id)
    if key is None or access_id != ACCESS_ID:
        raise NotFoundError(f"object {object_id!r} has no access method {access_id!r}")
    blob = _blob(repository, principal, head, key, "", base_url)
    assert blob.access_methods and blob.access_methods[0].access_url
    return blob.access_methods[0].access_url


def _image_row(repository: Repository, principal: Principal, image_id: str) -> ImageRow:
    access.check_image(repository, principal, image_id)
    with repository.reading() as session:
        row = queries.image_by_id(session, image_id)
        if row is None:
            raise NotFoundError(f"object {image_id!r} not found")
        return row


def _image(repository: Repository, principal: Principal, image_id: str, host: str) -> DrsObject:
    return _image_bundle(repository, _image_row(repository, principal, image_id), host)


def _image_bundle(repository: Repository, row: ImageRow, host: str) -> DrsObject:
    """An image (already access-checked) as a bundle of its stored keys."""
    objects = load_manifest(repository, row.id, row.manifest_sha256)
    contents = [
        ContentsObject(name=key, id=blob_id(row.id, key), drs_uri=[drs_uri(host, blob_id(row.id, key))])
        for key in sorted(objects)
    ]
    return DrsObject(
        id=row.id,
        name=row.name,
        self_uri=drs_uri(host, row.id),
        size=sum(entry["size"] for entry in objects.values()),
        created_time=queries.aware(row.created_at) or row.created_at,
        updated_time=queries.aware(row.created_at) or row.created_at,
        version="1",
        mime_type="application/vnd.ome-zarr",
        checksums=[Checksum(checksum=bundle_checksum([entry["sha256"] for entry in objects.values()]))],
        contents=contents,
        description=f"OME-Zarr image of {row.original_file.name} (study {row.study.name})",
        aliases=[f"{row.original_file.sha256}:{row.series_index}"],
    )


def _study(repository: Repository, principal: Principal, study_id: str, host: str, expand: bool) -> DrsObject:
    study_id = access.check_study(repository, principal, study_id)
    with repository.reading() as session:
        study = session.get(StudyRow, study_id)
        rows = access.shown_images(principal, queries.study_images(session, study_id))
    assert study is not None
    images = [_image_bundle(repository, row, host) for row in rows]  # the study's check covers them
    contents = [
        ContentsObject(
            name=image.name or image.id,
            id=image.id,
            drs_uri=[image.self_uri],
            contents=image.contents if expand else None,
        )
        for image in images
    ]
    return DrsObject(
        id=study.id,
        name=study.name,
        self_uri=drs_uri(host, study.id),
        size=sum(image.size for image in images),
        created_time=queries.aware(study.created_at) or study.created_at,
        version="1",
        checksums=[Checksum(checksum=bundle_checksum([image.checksums[0].checksum for image in images]))],
        contents=contents,
        description=study.description or None,
    )


def _blob(
    repository: Repository, principal: Principal, image_id: str, key: str, host: str, base_url: str
) -> DrsObject:
    row = _image_row(repository, principal, image_id)
    entry = load_manifest(repository, row.id, row.manifest_sha256).get(key)
    if entry is None:
        raise NotFoundError(f"object {blob_id(image_id, key)!r} not found")
    url = f"{base_url.rstrip('/')}/zarr/{row.id}.ome.zarr/{key}"
    created = queries.aware(row.created_at) or row.created_at
    return DrsObject(
        id=blob_id(row.id, key),
        name=key.replace("/", "_"),
        self_uri=drs_uri(host, blob_id(row.id, key)),
        size=entry["size"],
        created_time=created,
        updated_time=created,
        version="1",
        mime_type="application/json" if key.endswith("zarr.json") else "application/octet-stream",
        checksums=[Checksum(checksum=entry["sha256"])],
        access_methods=[AccessMethod(type="https", access_id=ACCESS_ID, access_url=AccessURL(url=url))],
    )
