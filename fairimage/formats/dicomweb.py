"""A DICOMweb client (PS3.18): QIDO-RS to find a study's series and instances, WADO-RS to retrieve them as
multipart/related application/dicom, so a PACS (Orthanc, dcm4chee, a cloud healthcare API) is a source like a
folder. It returns files; ingest groups, de-identifies and converts them as it does any DICOM."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from fairimage.model.errors import InvalidInputError, NotFoundError, StorageError

SERIES_UID = "0020000E"
SOP_UID = "00080018"
_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.I)


@dataclass(frozen=True)
class DicomWeb:
    """A DICOMweb service's base URL (``http://pacs:8042/dicom-web``)."""

    base: str
    timeout: float = 60.0

    def _get(self, client: httpx.Client, path: str, accept: str) -> httpx.Response:
        url = f"{self.base.rstrip('/')}/{path.lstrip('/')}"
        try:
            response = client.get(url, headers={"Accept": accept}, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise StorageError(f"{url}: the DICOMweb service did not answer ({exc})") from None
        if response.status_code == 404 or (response.status_code == 204 and "json" in accept):
            raise NotFoundError(f"{url}: not found on the DICOMweb service")
        if response.status_code >= 400:
            raise StorageError(f"{url}: the DICOMweb service answered {response.status_code}")
        return response

    def series(self, client: httpx.Client, study_uid: str) -> list[str]:
        """QIDO-RS: the Series Instance UIDs of a study."""
        found = self._get(client, f"studies/{study_uid}/series", "application/dicom+json").json()
        return [_value(entry, SERIES_UID) for entry in found]

    def instances(self, client: httpx.Client, study_uid: str, series_uid: str) -> list[str]:
        """QIDO-RS: the SOP Instance UIDs of a series."""
        path = f"studies/{study_uid}/series/{series_uid}/instances"
        return [_value(entry, SOP_UID) for entry in self._get(client, path, "application/dicom+json").json()]

    def retrieve(
        self, client: httpx.Client, study_uid: str, series_uid: str, instance_uid: str
    ) -> list[bytes]:
        """WADO-RS: an instance as the Part 10 file(s) of a multipart/related answer."""
        path = f"studies/{study_uid}/series/{series_uid}/instances/{instance_uid}"
        response = self._get(client, path, 'multipart/related; type="application/dicom"')
        return list(parts(response.headers.get("content-type", ""), response.content))


def _value(entry: dict[str, Any], tag: str) -> str:
    values = (entry.get(tag) or {}).get("Value") or []
    if not values:
        raise StorageError(f"the DICOMweb service sent a result without ({tag[:4]},{tag[4:]})")
    return str(values[0])


def parts(content_type: str, body: bytes) -> Iterator[bytes]:
    """The bodies of a multipart/related message (RFC 2387), in order."""
    match = _BOUNDARY.search(content_type)
    if match is None:
        raise StorageError(
            f"the DICOMweb service sent {content_type or 'no content type'}, not multipart/related"
        )
    delimiter = b"--" + match.group(1).encode()
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break  # the closing delimiter
        _, separator, content = chunk.partition(b"\r\n\r\n")
        if not separator:
            continue
        yield content.removesuffix(b"\r\n")


def pull(
    service: DicomWeb,
    study_uid: str,
    folder: Path,
    series_uids: list[str] | None = None,
    on_instance: Callable[[int, int], None] | None = None,
) -> list[Path]:
    """Retrieve a study's series (all, or those named) into ``folder`` as Part 10 files; their paths."""
    if not re.fullmatch(r"[0-9.]{1,64}", study_uid):
        raise InvalidInputError(
            f"--study {study_uid!r}: a Study Instance UID is digits and dots, e.g. 1.2.840..."
        )
    written: list[Path] = []
    with httpx.Client(follow_redirects=True) as client:
        wanted = series_uids or service.series(client, study_uid)
        if not wanted:
            raise NotFoundError(f"study {study_uid}: not found on the DICOMweb service at {service.base}")
        plan = [
            (series, instance)
            for series in wanted
            for instance in service.instances(client, study_uid, series)
        ]
        for number, (series, instance) in enumerate(plan, start=1):
            for index, blob in enumerate(service.retrieve(client, study_uid, series, instance)):
                path = folder / f"{len(written):06d}-{index}.dcm"
                path.write_bytes(blob)
                written.append(path)
            if on_instance is not None:
                on_instance(number, len(plan))
    return written
