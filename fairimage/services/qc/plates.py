"""Quality control of a plate: every field's channels measured (intensity and saturation at full resolution,
focus one pyramid level down), fields judged against their peers, wells summarised, and the plate's
controls, edge and row/column effects judged on a per-well readout. Each run is kept in the catalog."""

from __future__ import annotations

import csv
import io
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from fairimage.catalog.tables import QcReportRow
from fairimage.model.errors import InvalidInputError, NotFoundError
from fairimage.model.governance.policy import Principal
from fairimage.model.plates.layout import Geometry, row_index
from fairimage.model.plates.plate import Plate
from fairimage.model.qc.aggregate import FieldMetrics, assess_plate
from fairimage.model.qc.metrics import MEASURES, measure_plane
from fairimage.model.qc.plate import PlateStatistics, plate_statistics
from fairimage.model.qc.thresholds import QcThresholds
from fairimage.model.study import Image, new_id
from fairimage.ngff.reader import open_level
from fairimage.services.discovery import images as image_service
from fairimage.services.governance import access, audit
from fairimage.services.ingest.conversion import Progress
from fairimage.services.plates import plates as plate_service
from fairimage.services.qc.thresholds import study_thresholds
from fairimage.services.repository import Repository

# The power log-log slope is fitted over rings 2 .. side/8 of the spectrum: below 256 pixels a side, a level
# has too few rings for a stable fit, so focus is then measured at full resolution.
MIN_FOCUS_SIDE = 256


def run_plate_qc(
    repository: Repository,
    principal: Principal,
    plate_id: str,
    readout_channel: int = 0,
    thresholds: QcThresholds | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Measure and judge a plate; the report is stored (who ran it, when, with which thresholds) and
    returned as the API serves it. ``readout_channel`` is the channel whose field means are each well's
    readout for control statistics and plate effects; ``progress`` counts fields measured."""
    progress = progress or Progress()
    plate = check_plate_qc(repository, principal, plate_id, readout_channel)
    limits = thresholds or study_thresholds(repository, principal, plate.study_id)
    places = [
        ((row_index(well.row), int(well.column) - 1), index, image_id)
        for well in plate.wells
        for index, image_id in enumerate(well.images)
    ]
    progress.start_file(Path(plate.name), len(places))

    def measure(place: tuple[tuple[int, int], int, str]) -> list[tuple[FieldMetrics, str]]:
        found = _measure_field(repository, principal, plate, place)
        progress.advance(1)
        return found

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        measured = list(pool.map(measure, places))
    fields = [metrics for field_metrics in measured for metrics, _ in field_metrics]
    images = [image_id for field_metrics in measured for _, image_id in field_metrics]
    judged = assess_plate(fields, limits)
    readouts = _readouts(fields, plate.channels[readout_channel]["name"])
    controls = {
        (row_index(well.row), int(well.column) - 1): well.control for well in plate.wells if well.control
    }
    statistics = plate_statistics(readouts, controls, Geometry(len(plate.rows), len(plate.columns)), limits)
    report = _report(plate, fields, images, judged.fields, statistics, readout_channel, limits)
    return _store(repository, principal, plate, report, statistics)


def check_plate_qc(
    repository: Repository, principal: Principal, plate_id: str, readout_channel: int
) -> Plate:
    """The plate, if ``principal`` may run its QC (those who govern its study) on that readout channel."""
    plate = plate_service.get_plate(repository, principal, plate_id)
    with repository.reading() as session:
        access.governed_study(session, principal, plate.study_id)
    if not 0 <= readout_channel < len(plate.channels):
        last = len(plate.channels) - 1
        raise InvalidInputError(
            f"--readout-channel {readout_channel}: plate {plate.name!r} has channels 0 to {last}"
        )
    return plate


def _measure_field(
    repository: Repository, principal: Principal, plate: Plate, place: tuple[tuple[int, int], int, str]
) -> list[tuple[FieldMetrics, str]]:
    """Every channel of one field: intensity and saturation at level 0, focus at level 1 (a quarter of the
    FFT's work) where that level is still large enough for the power spectrum's fit."""
    well, index, image_id = place
    image = image_service.get_image(repository, principal, image_id)
    low_enough = len(image.levels) > 1 and min(image.levels[1].shape[-2:]) >= MIN_FOCUS_SIDE
    full, low = _level(repository, image, 0), _level(repository, image, 1 if low_enough else 0)
    found = []
    for channel in range(len(plate.channels)):
        plane = _plane(image, full, channel)
        focus = _plane(image, low, channel) if low is not full else None
        metrics = measure_plane(plane, focus_plane=focus)
        found.append((FieldMetrics(well, index, str(plate.channels[channel]["name"]), metrics), image_id))
    return found


def _level(repository: Repository, image: Image, index: int) -> Any:
    path = image.levels[index].path
    store = repository.image_root(image.id).zarr_store(path, read_only=True)
    return open_level(store, f"image {image.id} level {path}")


def _plane(image: Image, array: Any, channel: int) -> np.ndarray:
    """The first time point's middle z plane of one channel."""
    index: list[Any] = []
    for axis, size in zip(image.axis_names, array.shape, strict=True):
        index.append({"t": 0, "c": channel, "z": size // 2}.get(axis, slice(None)))
    return np.asarray(array[tuple(index)])


def _readouts(fields: list[FieldMetrics], channel: str) -> dict[tuple[int, int], float]:
    """Each well's readout: the median over its fields of the channel's mean intensity."""
    by_well: dict[tuple[int, int], list[float]] = {}
    for item in fields:
        if item.channel == channel:
            by_well.setdefault(item.well, []).append(item.metrics.intensity.mean)
    return {well: float(np.median(values)) for well, values in by_well.items()}


def _report(
    plate: Plate,
    fields: list[FieldMetrics],
    images: list[str],
    verdicts: Any,
    statistics: PlateStatistics,
    readout_channel: int,
    limits: QcThresholds,
) -> dict[str, Any]:
    rows = []
    for item, image_id, verdict in zip(fields, images, verdicts, strict=True):
        rows.append(
            {
                "image": image_id,
                "well": f"{plate.rows[item.well[0]]}{plate.columns[item.well[1]]}",
                "field": item.field + 1,
                "channel": item.channel,
                "measures": item.metrics.values(),
                "flags": sorted(verdict.flags),
                "outliers": [asdict(outlier) for outlier in verdict.outliers],
            }
        )
    controls = statistics.controls
    return {
        "plate": plate.id,
        "readout": {
            "channel": plate.channels[readout_channel]["name"],
            "measure": "median over fields of mean",
        },
        "thresholds": asdict(limits),
        "statistics": {
            "z_prime": controls.z_prime if controls else None,
            "ssmd": controls.ssmd if controls else None,
            "signal_window": controls.signal_window if controls else None,
            "controls": asdict(controls) if controls else None,
            "edge": asdict(statistics.edge) if statistics.edge else None,
            "flagged_rows": [plate.rows[r] for r in statistics.flagged_rows],
            "flagged_columns": [plate.columns[c] for c in statistics.flagged_columns],
            "flags": sorted(statistics.flags),
        },
        "fields": rows,
    }


def _store(
    repository: Repository, principal: Principal, plate: Plate, report: dict[str, Any], stats: PlateStatistics
) -> dict[str, Any]:
    report_id = new_id("qc")
    flagged = len({(row["image"]) for row in report["fields"] if row["flags"] or row["outliers"]})
    z_prime = report["statistics"]["z_prime"]
    with repository.transaction() as session:
        session.add(
            QcReportRow(
                id=report_id,
                plate_id=plate.id,
                study_id=plate.study_id,
                actor=principal.name,
                z_prime=z_prime if z_prime is None or np.isfinite(z_prime) else None,
                flagged_fields=flagged,
                plate_flags=sorted(stats.flags),
                thresholds=report["thresholds"],
                summary={key: report[key] for key in ("readout", "statistics")},
                fields=_finite(report["fields"]),
            )
        )
        audit.record(
            session, principal.name, "qc.plate", f"plate:{plate.id}", report=report_id, flagged=flagged
        )
    return latest_report(repository, principal, plate.id)


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: a measure that could not be taken is null."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def latest_report(repository: Repository, principal: Principal, plate_id: str) -> dict[str, Any]:
    """The plate's newest QC report, after the access check; NotFoundError if QC never ran on it."""
    access.check_plate(repository, principal, plate_id)
    with repository.reading() as session:
        row = _latest_row(session, plate_id)
        if row is None:
            raise NotFoundError(f"plate {plate_id!r} has no QC report yet; run 'fairimage qc {plate_id}'")
        return {
            "id": row.id,
            "plate": row.plate_id,
            "created_at": row.created_at,
            "actor": row.actor,
            "flagged_fields": row.flagged_fields,
            "plate_flags": row.plate_flags,
            "thresholds": row.thresholds,
            **_finite(row.summary),
            "fields": row.fields,
        }


def _latest_row(session: Session, plate_id: str) -> QcReportRow | None:
    found = select(QcReportRow).where(QcReportRow.plate_id == plate_id).order_by(QcReportRow.id.desc())
    return session.scalars(found).first()


def latest_summary(repository: Repository, principal: Principal, plate_id: str) -> dict[str, Any] | None:
    """The newest report's headline (id, Z', flags, flagged fields), or None if QC never ran."""
    access.check_plate(repository, principal, plate_id)
    with repository.reading() as session:
        row = _latest_row(session, plate_id)
        if row is None:
            return None
        return {"id": row.id, "z_prime": row.z_prime, "flags": row.plate_flags, "flagged": row.flagged_fields}


HEAT_BINS = 10  # the plate page's QC heatmap colours wells by the rank of their readout, in ten steps


def well_heatmap(repository: Repository, principal: Principal, plate_id: str) -> dict[str, Any] | None:
    """The latest report's readout per well (median over fields of the readout channel's mean), its decile
    among the plate's wells (0-9, for the page's colour scale) and the flags of the well's fields; None if
    QC never ran. Keyed by well name ("B3")."""
    access.check_plate(repository, principal, plate_id)
    with repository.reading() as session:
        row = _latest_row(session, plate_id)
        if row is None:
            return None
        channel, fields = row.summary["readout"]["channel"], row.fields
    means: dict[str, list[float]] = {}
    flags: dict[str, set[str]] = {}
    for field in fields:
        found = flags.setdefault(field["well"], set())
        found.update(field["flags"])
        if field["outliers"]:
            found.add("outlier")
        value = field["measures"].get("mean")
        if field["channel"] == channel and value is not None:
            means.setdefault(field["well"], []).append(float(value))
    readouts = {well: float(np.median(values)) for well, values in means.items()}
    order = sorted(readouts, key=readouts.__getitem__)
    spread = (HEAT_BINS - 1) / max(1, len(order) - 1)  # lowest well in the first step, highest in the last
    deciles = {well: round(rank * spread) for rank, well in enumerate(order)}
    wells = {
        well: {"readout": readouts.get(well), "bin": deciles.get(well), "flags": sorted(flags.get(well, ()))}
        for well in flags.keys() | readouts.keys()
    }
    low, high = (readouts[order[0]], readouts[order[-1]]) if order else (None, None)
    return {"report": row.id, "channel": channel, "wells": wells, "low": low, "high": high}


def plates_below(repository: Repository, principal: Principal, z_prime: float) -> list[dict[str, Any]]:
    """Plates the caller may read whose latest QC report has a Z'-factor below ``z_prime``: each with
    its study, its Z' and its report's id."""
    with repository.reading() as session:
        rows = session.execute(
            select(QcReportRow.plate_id, QcReportRow.study_id, QcReportRow.z_prime, QcReportRow.id).order_by(
                QcReportRow.id.desc()
            )
        ).all()
    latest: dict[str, tuple[str, float | None, str]] = {}
    for plate_id, study_id, value, report_id in rows:
        latest.setdefault(plate_id, (study_id, value, report_id))
    found = []
    for plate_id, (study_id, value, report_id) in latest.items():
        if value is None or value >= z_prime:
            continue
        try:
            access.check_plate(repository, principal, plate_id)
        except NotFoundError:
            continue
        found.append({"plate": plate_id, "study_id": study_id, "z_prime": value, "report": report_id})
    return found


TABLE_COLUMNS = ("image", "well", "field", "channel", *MEASURES, "flags", "outliers")


def report_rows(report: dict[str, Any]) -> list[list[Any]]:
    """The per-field measures as a table: a row per field and channel, in ``TABLE_COLUMNS`` order."""
    rows = []
    for row in report["fields"]:
        measures = [row["measures"].get(name) for name in MEASURES]
        outliers = ";".join(f"{o['metric']} z={o['z']:.1f}" for o in row["outliers"])
        rows.append(
            [
                row["image"],
                row["well"],
                row["field"],
                row["channel"],
                *measures,
                ";".join(row["flags"]),
                outliers,
            ]
        )
    return rows


def report_csv(report: dict[str, Any]) -> str:
    """The per-field measures as CSV (``report_rows``, with a header)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(TABLE_COLUMNS)
    writer.writerows(report_rows(report))
    return out.getvalue()


def report_parquet(report: dict[str, Any]) -> bytes:
    """The per-field measures as a Parquet file (typed columns: measures as doubles, the report's id and
    plate in the file's metadata), for pandas, polars, R and Spark."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = list(zip(*report_rows(report), strict=True)) or [()] * len(TABLE_COLUMNS)
    types = [pa.string(), pa.string(), pa.int32(), pa.string()] + [pa.float64()] * len(MEASURES)
    types += [pa.string(), pa.string()]
    table = pa.table(
        [pa.array(values, type=kind) for values, kind in zip(columns, types, strict=True)],
        names=list(TABLE_COLUMNS),
    ).replace_schema_metadata(
        {"fairimage.qc_report": str(report["id"]), "fairimage.plate": str(report["plate"])}
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def flagged_images(repository: Repository, principal: Principal, flag: str) -> list[dict[str, Any]]:
    """The fields and channels the latest QC report of each plate the caller may read flags with
    ``flag`` (empty, dark, saturated, blurred, or outlier), newest report first."""
    with repository.reading() as session:
        latest: dict[str, tuple[str, int]] = {}
        for report_id, plate_id, flagged in session.execute(
            select(QcReportRow.id, QcReportRow.plate_id, QcReportRow.flagged_fields).order_by(
                QcReportRow.id.desc()
            )
        ):
            latest.setdefault(plate_id, (report_id, flagged))
        wanted = [report_id for report_id, flagged in latest.values() if flagged > 0]
        reports = session.scalars(
            select(QcReportRow).where(QcReportRow.id.in_(wanted)).order_by(QcReportRow.id.desc())
        ).all()
    found = []
    for report in reports:
        try:
            access.check_plate(repository, principal, report.plate_id)
        except NotFoundError:
            continue
        for row in report.fields:
            if flag in row["flags"] or (flag == "outlier" and row["outliers"]):
                found.append(
                    {
                        "image": row["image"],
                        "plate": report.plate_id,
                        "study_id": report.study_id,
                        "well": row["well"],
                        "field": row["field"],
                        "channel": row["channel"],
                        "flags": row["flags"],
                        "report": report.id,
                    }
                )
    return found
