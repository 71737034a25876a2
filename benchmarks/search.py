"""Search latency and indexing throughput at scale: N generated image records over N/100 studies, on SQLite
(FTS5) and PostgreSQL (tsvector + GIN), through the real search service with its access condition.

Each study gets generated REMBI metadata (an organism among 20 NCBITaxon taxa, an imaging method among 25
FBbi methods, a fluorophore, a title and keywords from a vocabulary); every image is indexed by the same
``build_document`` ingest uses. Queries, each timed 200 times with random words and values:
- text: two words (``confocal mitosis``);
- facet: one facet value (``organism=NCBITaxon:10090``), counts of every facet included;
- text+facet: both.
For scale, the same text query runs as the obvious alternative (``LIKE '%word%'`` on the document text);
the ratio says what the full-text index buys.

Target (issue 6): p95 <= 100 ms per query on this 2-core machine with 1,000,000 images.

PostgreSQL runs in a database of its own, ``fairimage_bench`` (made empty, dropped at the end), on the
server at 127.0.0.1:5432. ``--load copy`` loads it as a restore does (issue 21: 10,000,000 images): the same
rows, copied by several processes with the bulk tables' indexes and keys made afterwards from their own
definitions. ``--ingest N`` times ``fairimage ingest`` of N new PNGs into the catalog, empty and populated.

    python benchmarks/search.py                      # 1,000,000 images (about 30 minutes per catalog)
    python benchmarks/search.py --images 100000      # a tenth
    python benchmarks/search.py --catalogs sqlite
    python benchmarks/search.py --catalogs postgresql --load copy --images 10000000 --queries 100 --ingest 50
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from PIL import Image
from sqlalchemy import JSON, Connection, Engine, create_engine, insert, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fairimage import ontology  # noqa: E402
from fairimage.catalog import queries  # noqa: E402
from fairimage.catalog import search as index  # noqa: E402
from fairimage.catalog.tables import (  # noqa: E402
    ImageRow,
    OriginalFileRow,
    SearchDocumentRow,
    SearchGroupRow,
    SearchSignatureRow,
    StudyRow,
    StudyVersionRow,
)
from fairimage.model.curation.rembi import Rembi  # noqa: E402
from fairimage.model.discovery.search import ImageFacts, build_document  # noqa: E402
from fairimage.model.governance.policy import ANONYMOUS, operator  # noqa: E402
from fairimage.model.governance.version import VersionContent, VersionImage, version_id  # noqa: E402
from fairimage.services.discovery import search  # noqa: E402
from fairimage.services.governance import versions  # noqa: E402
from fairimage.services.repository import Repository, init_repository  # noqa: E402
from fairimage.settings import load_settings  # noqa: E402

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432"
ADMIN_DATABASE = "test"  # only connected to, to make and drop the benchmark's own database
BENCH_DATABASE = "fairimage_bench"
RESULTS = Path(__file__).resolve().parent / "results"
TAXA = [
    9606,
    10090,
    10116,
    7227,
    6239,
    7955,
    4932,
    4896,
    3702,
    562,
    8355,
    9031,
    9544,
    44689,
    5833,
    3055,
    9823,
    9913,
    4577,
    1423,
]
METHODS = [
    251,
    252,
    253,
    254,
    255,
    243,
    244,
    245,
    246,
    247,
    248,
    369,
    617,
    366,
    367,
    368,
    257,
    258,
    585,
    50000,
    622,
    259,
    1002,
    332,
    334,
]
FLUOROPHORES = [56, 52, 82, 525, 440, 447, 449, 450, 451, 518, 84, 81]
WORDS = [
    "mitosis",
    "meiosis",
    "apoptosis",
    "migration",
    "adhesion",
    "polarity",
    "cytokinesis",
    "autophagy",
    "endocytosis",
    "spindle",
    "chromatin",
    "nucleolus",
    "centrosome",
    "cilia",
    "synapse",
    "neuron",
    "axon",
    "dendrite",
    "organoid",
    "embryo",
    "somite",
    "gastrulation",
    "tumour",
    "biopsy",
    "liver",
    "kidney",
    "retina",
    "cortex",
    "hippocampus",
    "muscle",
    "skin",
    "gut",
    "lung",
    "heart",
    "stem",
    "screen",
    "knockdown",
    "drug",
    "dose",
    "timecourse",
    "lineage",
    "tracking",
    "segmentation",
    "membrane",
    "actin",
    "tubulin",
    "mitochondria",
    "golgi",
]


def rembi(rng: random.Random, number: int) -> Rembi:
    words = rng.sample(WORDS, 4)
    return Rembi.model_validate(
        {
            "study": {
                "title": f"{words[0]} and {words[1]} study {number}",
                "description": f"Images of {words[2]} in {words[3]}",
                "license": rng.choice(["CC-BY-4.0", "CC0-1.0"]),
                "keywords": words,
            },
            "study_components": [
                {
                    "name": "main",
                    "description": " ".join(rng.sample(WORDS, 3)),
                    "imaging_methods": [{"id": f"FBbi:{rng.choice(METHODS):08d}"}],
                    "biosample": "b",
                    "specimen": "s",
                }
            ],
            "biosamples": [
                {
                    "id": "b",
                    "organism": {"id": f"NCBITaxon:{rng.choice(TAXA)}"},
                    "biological_entity": rng.choice(WORDS),
                }
            ],
            "specimens": [
                {"id": "s", "channels": [{"content": {"id": f"FBbi:{rng.choice(FLUOROPHORES):08d}"}}]}
            ],
        }
    )


def resolve(document: Rembi) -> Rembi:
    """Term labels, as curation stores them."""
    for component in document.study_components:
        for method in component.imaging_methods:
            method.label = ontology.fbbi().term(method.id or "").label  # type: ignore[union-attr]
    return document


def study_batch(
    first: int, metadata: list[Rembi], per_study: int, groups: int, now: datetime
) -> dict[type, list[dict[str, object]]]:
    """The catalog rows of studies ``first``, ``first + 1``, ... with ``metadata``: per table, as ingest and
    the search index write them (``build_document``, ``signature``, ``group_key``)."""
    vocabularies = ontology.vocabularies()
    study_rows, file_rows, image_rows, version_rows, doc_rows, facet_rows = [], [], [], [], [], []
    group_rows: dict[str, dict[str, object]] = {}
    for number, document_metadata in enumerate(metadata, start=first):
        study_id = f"study-{number:012d}"
        study_rows.append(
            {
                "id": study_id,
                "name": f"Study {number}",
                "description": "",
                "created_at": now,
                "policy": "public" if number % 10 else "private",
                "rembi": document_metadata.dump(),
            }
        )
        seen: set[str] = set()  # a signature names its study, so none is shared across studies
        listed = []
        for n in range(per_study):
            image_id = f"img-{number:08d}{n:04d}"
            file_id = f"file-{number:08d}{n:04d}"
            file_rows.append(
                {
                    "id": file_id,
                    "study_id": study_id,
                    "name": f"{image_id}.tif",
                    "source_path": "",
                    "format": "tiff",
                    "size": 1,
                    "sha256": (sha256 := f"{number:032d}{n:032d}"),
                    "created_at": now,
                }
            )
            image_rows.append(
                {
                    "id": image_id,
                    "study_id": study_id,
                    "file_id": file_id,
                    "name": f"{image_id}.tif",
                    "series_index": 0,
                    "axes": [{"name": a, "type": "space"} for a in "zyx"],
                    "shape": [8, 512, 512],
                    "dtype": "uint16",
                    "source_dtype": "uint16",
                    "scale": [1, 1, 1],
                    "channels": [{"label": "DAPI"}],
                    "levels": [],
                    "storage_key": "",
                    "manifest_key": "",
                    "manifest_sha256": "",
                    "stored_bytes": 1,
                    "object_count": 1,
                    "created_at": now,
                }
            )
            listed.append(VersionImage(**{k: image_rows[-1][k] for k in VERSION_FIELDS}, file_sha256=sha256))
            facts = ImageFacts(
                image_id,
                f"{image_id}.tif",
                f"{image_id}.tif",
                "tiff",
                "zyx",
                (8, 512, 512),
                "uint16",
                ("DAPI",) if groups == 1 else (f"DAPI-{n % groups}",),  # another channel: another group
            )
            document = build_document(study_id, f"Study {number}", document_metadata, facts, vocabularies)
            key = index.signature(document.facets)
            group = index.group_key(study_id, key, document.shared)
            group_rows.setdefault(
                group,
                {
                    "group_key": group,
                    "study_id": study_id,
                    "signature": key,
                    "body": document.shared,
                    "images": 0,
                },
            )
            group_rows[group]["images"] += 1  # type: ignore[operator]
            doc_rows.append(
                {
                    "image_id": image_id,
                    "study_id": study_id,
                    "signature": key,
                    "group_key": group,
                    "body": document.text,
                }
            )
            if key not in seen:
                seen.add(key)
                facet_rows += [
                    {"signature": key, "facet": f.facet, "value": f.value, "direct": f.direct}
                    for f in document.facets
                ]
        version_rows.append(first_version(study_rows[-1], listed, now))
    return {
        StudyRow: study_rows,
        OriginalFileRow: file_rows,
        ImageRow: image_rows,
        StudyVersionRow: version_rows,
        SearchGroupRow: list(group_rows.values()),
        SearchDocumentRow: doc_rows,
        SearchSignatureRow: facet_rows,
    }


VERSION_FIELDS = ("id", "name", "file_id", "manifest_sha256", "stored_bytes")


def first_version(study: dict[str, Any], images: list[VersionImage], now: datetime) -> dict[str, object]:
    """The study's version 1, as the end of its ingest run records it (``versions.record_version``)."""
    metadata = {k: study[k] for k in ("name", "description")} | {"data_use": None, "rembi": study["rembi"]}
    content = VersionContent(metadata=metadata, images=tuple(images))
    return {
        "id": version_id(str(study["id"]), 1),
        "study_id": study["id"],
        "number": 1,
        "created_at": now,
        "created_by": "operator",
        "note": f"ingest run-bench: {len(images)} files",
        "content": content.model_dump(mode="json"),
        "content_sha256": content.sha256(),
    }


def populate(
    url: str,
    images: int,
    per_study: int,
    folder: Path,
    groups: int = 1,
    load: str = "insert",
    jobs: int = 2,
) -> tuple[object, float]:
    """A repository with ``images`` indexed image records; returns it and the loading rate (images/s)."""
    repository = init_repository(load_settings(folder / "repo", db=url))
    return repository, fill(repository, images, per_study, groups, load, jobs)


def fill(repository: Repository, images: int, per_study: int, groups: int, load: str, jobs: int) -> float:
    """Add ``images`` generated image records to the catalog; returns the rate (images/s).

    ``load="insert"`` inserts batches through SQLAlchemy into the live tables and indexes. ``load="copy"``
    (PostgreSQL) loads the same rows as a bulk restore does: the bulk tables' indexes and constraints are
    dropped, the rows copied in by ``jobs`` processes (psycopg COPY), then every index and constraint is
    made again from its own definition and the tables vacuumed and analysed."""
    rng = random.Random(7)
    now = datetime.now(UTC)
    started = time.perf_counter()
    studies = images // per_study
    batch_studies = max(1, 20_000 // per_study)

    def batches() -> Iterator[tuple[int, list[Rembi], int, int, datetime]]:
        # Metadata is drawn here, in study order, so both loads make the same rows from one seed.
        for first in range(0, studies, batch_studies):
            last = min(first + batch_studies, studies)
            yield (
                first,
                [resolve(rembi(rng, number)) for number in range(first, last)],
                per_study,
                groups,
                now,
            )

    def progress(done: int) -> None:
        print(f"  indexed {done:,} images ({done / (time.perf_counter() - started):,.0f}/s)", flush=True)

    if load == "copy":
        dsn = repository.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        with bulk_load(repository.engine):
            loaded = 0
            with multiprocessing.get_context("fork").Pool(jobs) as pool:
                for count in pool.imap(functools.partial(copy_batch, dsn), batches()):
                    loaded += count
                    if loaded % 200_000 < count:
                        progress(loaded)
            print(f"  copied {loaded:,} images in {time.perf_counter() - started:,.0f} s", flush=True)
    else:
        for batch in batches():
            rows = study_batch(*batch)
            with repository.transaction() as session:
                for table, table_rows in rows.items():
                    session.execute(insert(table.__table__), table_rows)  # type: ignore[attr-defined]
            progress(len(rows[ImageRow]) + batch[0] * per_study)
        if repository.engine.dialect.name == "postgresql":
            with repository.engine.begin() as connection:
                connection.execute(text("ANALYZE"))
    return studies * per_study / (time.perf_counter() - started)


BULK_TABLES = [
    row.__tablename__
    for row in (
        StudyRow,
        OriginalFileRow,
        ImageRow,
        StudyVersionRow,
        SearchGroupRow,
        SearchDocumentRow,
        SearchSignatureRow,
    )
]


def copy_batch(dsn: str, batch: tuple[int, list[Rembi], int, int, datetime]) -> int:
    """Copy one batch of studies' rows in one transaction (a worker process); returns its images."""
    rows = study_batch(*batch)
    with psycopg.connect(dsn) as connection, connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
        for table, table_rows in rows.items():
            columns = table.__table__.columns  # type: ignore[attr-defined]
            names = list(table_rows[0])
            as_json = [isinstance(columns[name].type, JSON) for name in names]
            statement = f"COPY {table.__tablename__} ({', '.join(names)}) FROM STDIN"  # type: ignore[attr-defined]
            with cursor.copy(statement) as copy:
                for row in table_rows:
                    # SQLAlchemy's JSON type stores json.dumps(value): the same text.
                    copy.write_row(
                        [json.dumps(v) if j else v for v, j in zip(row.values(), as_json, strict=True)]
                    )
    return len(rows[ImageRow])


@dataclass(frozen=True)
class Definitions:
    """The bulk tables' constraints and indexes as PostgreSQL states them (pg_get_constraintdef,
    pg_indexes): what a dump restores after the data."""

    keys: list[tuple[str, str, str]]  # (table, name, definition): primary keys and unique constraints
    foreign_keys: list[tuple[str, str, str]]  # on or referring to the bulk tables
    indexes: list[tuple[str, str, str]]  # (table, name, CREATE INDEX ...), the others

    @classmethod
    def read(cls, connection: Connection) -> Definitions:
        constraints = connection.execute(
            text(
                "SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid) "
                "FROM pg_constraint WHERE contype IN ('p', 'u', 'f') "
                "AND (conrelid::regclass::text = ANY(:tables) "
                "OR (contype = 'f' AND confrelid::regclass::text = ANY(:tables))) ORDER BY 1, 2"
            ),
            {"tables": BULK_TABLES},
        ).all()
        indexes = connection.execute(
            text(
                "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
                "AND tablename = ANY(:tables) AND indexname NOT IN "
                "(SELECT conname FROM pg_constraint WHERE contype IN ('p', 'u')) ORDER BY 1, 2"
            ),
            {"tables": BULK_TABLES},
        ).all()
        return cls(
            [(t, n, d) for t, n, kind, d in constraints if kind != "f"],
            [(t, n, d) for t, n, kind, d in constraints if kind == "f"],
            [(t, n, d) for t, n, d in indexes],
        )


@contextmanager
def bulk_load(engine: Engine) -> Iterator[None]:
    """Drop the bulk tables' constraints and indexes (and autovacuum) for the body, then make them again
    from their definitions, table by table in two connections; check that they are all back."""
    with engine.begin() as connection:
        before = Definitions.read(connection)
        for table, name, _ in before.foreign_keys + before.keys:
            connection.execute(text(f"ALTER TABLE {table} DROP CONSTRAINT {name}"))
        for _, name, _ in before.indexes:
            connection.execute(text(f"DROP INDEX {name}"))
        for table in BULK_TABLES:
            connection.execute(text(f"ALTER TABLE {table} SET (autovacuum_enabled = off)"))
    yield
    started = time.perf_counter()

    def rebuild(table: str) -> None:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("SET maintenance_work_mem = '2GB'"))
            for _, name, definition in [k for k in before.keys if k[0] == table]:
                connection.execute(text(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}"))
            for _, _, definition in [i for i in before.indexes if i[0] == table]:
                connection.execute(text(definition))
            connection.execute(text(f"ALTER TABLE {table} RESET (autovacuum_enabled)"))
            connection.execute(text(f"VACUUM (ANALYZE) {table}"))

    largest_first = sorted(BULK_TABLES, key=lambda table: table != "images" and table != "search_documents")
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(rebuild, largest_first))
    print(f"  indexes and keys made again in {time.perf_counter() - started:,.0f} s", flush=True)
    started = time.perf_counter()
    with engine.begin() as connection:  # one at a time: each locks the table it refers to
        for table, name, definition in before.foreign_keys:
            connection.execute(text(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}"))
        after = Definitions.read(connection)
    print(f"  foreign keys checked and made again in {time.perf_counter() - started:,.0f} s", flush=True)
    if after != before:
        raise RuntimeError(f"the schema differs after the bulk load: {before} != {after}")


def table_sizes(engine: Engine) -> dict[str, dict[str, int]]:
    """Rows, bytes of table (with TOAST) and of its indexes, per bulk table, and the database's bytes."""
    sizes: dict[str, dict[str, int]] = {}
    with engine.connect() as connection:
        for table in BULK_TABLES:
            rows, total, indexes = connection.execute(
                text(
                    f"SELECT (SELECT count(*) FROM {table}), pg_total_relation_size('{table}'), "
                    f"pg_indexes_size('{table}')"
                )
            ).one()
            sizes[table] = {"rows": rows, "total_bytes": total, "index_bytes": indexes}
            print(
                f"  {table:18s} {rows:>12,} rows  {total / 2**30:7.2f} GiB "
                f"({indexes / 2**30:.2f} GiB indexes)",
                flush=True,
            )
        database = connection.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
    sizes["database"] = {"total_bytes": database}
    print(f"  {'the database':18s} {database / 2**30:.2f} GiB", flush=True)
    return sizes


def catalog_wide_queries(repository: Repository) -> dict[str, float]:
    """Median time of the catalog-wide queries behind every command and every ingested file, which grow
    with the catalog: opening a repository looks for studies without a version, and ingest asks whether any
    stored original has a new file's size before it hashes the file."""

    def median_ms(call: Callable[[], object]) -> float:
        return round(timed(call, 3)[0], 1)

    def size_exists() -> None:
        with repository.reading() as session:
            queries.file_of_size_exists(session, 123_457)

    found = {
        "open: record_unversioned": median_ms(lambda: versions.record_unversioned(repository)),
        "ingest: file_of_size_exists": median_ms(size_exists),
    }
    for name, ms in found.items():
        print(f"  {name:32s} {ms:9.1f} ms", flush=True)
    return found


def measure_ingest(repo: Path, files: int, label: str) -> dict[str, object]:
    """``fairimage ingest`` of ``files`` new small PNGs (128 x 128, 8-bit) into a new study of the repository,
    timed as a whole (the command's start included): each file is converted, then published in its own
    catalog transaction (its rows and search index entries) as ingest always does."""
    folder = repo.parent / f"pngs-{label}"
    folder.mkdir()
    rng = np.random.default_rng(zlib.crc32(label.encode()))
    for n in range(files):
        pixels = rng.integers(0, 256, (128, 128), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"cells-{label}-{n:03d}.png")
    command = [str(Path(sys.executable).parent / "fairimage"), "ingest", str(folder), "--repo", str(repo)]
    started = time.perf_counter()
    done = subprocess.run(
        [*command, "--study", f"ingest at {label}", "--json"], capture_output=True, text=True
    )
    elapsed = time.perf_counter() - started
    outcomes = json.loads(done.stdout) if done.stdout.strip().startswith("[") else []
    failed = [outcome for outcome in outcomes if outcome["status"] != "ingested"]
    if done.returncode or len(outcomes) != files:  # kept with the figures, not raised: the run goes on
        print(f"  fairimage ingest at {label} FAILED: exit {done.returncode}, {failed[:3]}", flush=True)
        return {"files": files, "exit": done.returncode, "failed": failed, "stderr": done.stderr[-4000:]}
    rate = files / elapsed
    print(f"  fairimage ingest of {files} PNGs at {label}: {elapsed:.1f} s, {rate:.2f} files/s", flush=True)
    return {"files": files, "seconds": round(elapsed, 2), "files_per_s": round(rate, 2)}


def timed(call: object, times: int) -> tuple[float, float]:
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        call()  # type: ignore[operator]
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(0.95 * (len(samples) - 1))]


def measure(repository: object, rng: random.Random, times: int) -> dict[str, dict[str, float]]:
    admin = operator("bench")
    cases = {
        "text": lambda: search.search(repository, ANONYMOUS, " ".join(rng.sample(WORDS, 2))),  # type: ignore[arg-type]
        "facet": lambda: search.search(
            repository, ANONYMOUS, "", {"organism": [f"NCBITaxon:{rng.choice(TAXA)}"]}
        ),  # type: ignore[arg-type]
        "text+facet": lambda: search.search(  # type: ignore[arg-type]
            repository, ANONYMOUS, rng.choice(WORDS), {"imaging_method": [f"FBbi:{rng.choice(METHODS):08d}"]}
        ),
        "text (admin, no access filter)": lambda: search.search(
            repository, admin, " ".join(rng.sample(WORDS, 2))
        ),  # type: ignore[arg-type]
    }
    found = {}
    for name, call in cases.items():
        call()  # warm the caches once
        p50, p95 = timed(call, times)
        found[name] = {"p50_ms": round(p50, 1), "p95_ms": round(p95, 1)}
        print(f"  {name:32s} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms", flush=True)

    def like_scan() -> None:
        word = rng.choice(WORDS)
        with repository.reading() as session:  # type: ignore[attr-defined]
            session.execute(  # each image's whole text: its group's and its own
                text(
                    "SELECT count(*) FROM search_documents d "
                    "JOIN search_groups g ON g.group_key = d.group_key "
                    "WHERE lower(g.body || ' ' || d.body) LIKE :w"
                ),
                {"w": f"%{word}%"},
            ).scalar()

    p50, p95 = timed(like_scan, max(10, times // 10))
    found["baseline: LIKE scan, count only"] = {"p50_ms": round(p50, 1), "p95_ms": round(p95, 1)}
    print(f"  {'baseline: LIKE scan, count only':32s} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms", flush=True)
    ratio = p50 / max(found["text"]["p50_ms"], 0.01)
    print(f"  the full-text query (with facet counts) is {ratio:.1f}x faster than the LIKE count at p50")
    return found


@contextmanager
def bench_database(server: str) -> Iterator[str]:
    """The URL of a database of the benchmark's own, made empty on ``server`` and dropped afterwards (never
    the ``test`` database, which the test suite uses at the same time)."""
    admin = create_engine(f"{server}/{ADMIN_DATABASE}", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        in_use = connection.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE datname = :name"), {"name": BENCH_DATABASE}
        ).scalar_one()
        if in_use:
            raise SystemExit(f"database {BENCH_DATABASE} is in use ({in_use} connections): another run?")
    try:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {BENCH_DATABASE}"))  # what a crashed run left
            connection.execute(text(f"CREATE DATABASE {BENCH_DATABASE}"))
        yield f"{server}/{BENCH_DATABASE}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)"))
        admin.dispose()


def run_catalog(catalog: str, args: argparse.Namespace, folder: Path, url: str) -> dict[str, object]:
    """Populate one catalog and time its queries; with ``--ingest``, time ``fairimage ingest`` into it
    before and after it is populated."""
    load = args.load if catalog == "postgresql" else "insert"
    found: dict[str, object] = {"load": load}
    repository = init_repository(load_settings(folder / "repo", db=url))
    if args.ingest:
        found["ingest_empty"] = measure_ingest(folder / "repo", args.ingest, "0")
    started = time.perf_counter()
    rate = fill(repository, args.images, args.per_study, args.groups_per_study, load, args.jobs)
    found["populate_s"] = round(time.perf_counter() - started)
    found["index_images_per_s"] = round(rate)
    print(f"  populating: {found['populate_s']:,} s, {rate:,.0f} images/s", flush=True)
    if catalog == "postgresql":
        found["sizes"] = table_sizes(repository.engine)
    # Other work on the machine shows in the latencies: its load is kept with them.
    found["load_average_before"] = os.getloadavg()
    found.update(measure(repository, random.Random(1), args.queries))
    found["catalog_wide_ms"] = catalog_wide_queries(repository)
    repository.close()
    if args.ingest:
        found["ingest"] = measure_ingest(folder / "repo", args.ingest, f"{args.images}")
    found["load_average_after"] = os.getloadavg()
    print(f"  load average before the queries {found['load_average_before']}, at the end {os.getloadavg()}")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=1_000_000)
    parser.add_argument("--per-study", type=int, default=100)
    parser.add_argument(
        "--groups-per-study",
        type=int,
        default=1,
        help="search groups per study (images with different channel names); 1: a study's images alike",
    )
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--catalogs", default="sqlite,postgresql")
    parser.add_argument(
        "--load",
        choices=["insert", "copy"],
        default="insert",
        help="PostgreSQL: insert into the live indexes (the default), or COPY with the indexes made after",
    )
    parser.add_argument("--jobs", type=int, default=2, help="with --load copy: processes that copy rows")
    parser.add_argument(
        "--ingest",
        type=int,
        default=0,
        metavar="FILES",
        help="also time 'fairimage ingest' of FILES new PNGs into the catalog, empty and then populated",
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "search.json")
    args = parser.parse_args()
    results: dict[str, object] = {
        "images": args.images,
        "studies": args.images // args.per_study,
        "groups_per_study": args.groups_per_study,
        "machine": platform.platform(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    for catalog in args.catalogs.split(","):
        print(f"{catalog}: {args.images:,} images in {args.images // args.per_study:,} studies", flush=True)
        with tempfile.TemporaryDirectory(prefix="fairimage-search-") as folder:
            if catalog == "postgresql":
                with bench_database(POSTGRES) as url:
                    results[catalog] = run_catalog(catalog, args, Path(folder), url)
            else:
                results[catalog] = run_catalog(
                    catalog, args, Path(folder), f"sqlite:///{folder}/catalog.sqlite"
                )
    args.output.parent.mkdir(exist_ok=True)
    args.output.write_text(json.dumps(results, indent=1))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
