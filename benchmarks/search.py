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

    python benchmarks/search.py                      # 1,000,000 images (about 30 minutes per catalog)
    python benchmarks/search.py --images 100000      # a tenth
    python benchmarks/search.py --catalogs sqlite
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fairimage import ontology  # noqa: E402
from fairimage.catalog import search as index  # noqa: E402
from fairimage.catalog.tables import (
    ImageRow,
    OriginalFileRow,
    SearchDocumentRow,
    SearchGroupRow,
    SearchSignatureRow,
    StudyRow,
)
from fairimage.model.curation.rembi import Rembi  # noqa: E402
from fairimage.model.discovery.search import ImageFacts, build_document  # noqa: E402
from fairimage.model.governance.policy import ANONYMOUS, operator  # noqa: E402
from fairimage.services.discovery import search  # noqa: E402
from fairimage.services.repository import init_repository  # noqa: E402
from fairimage.settings import load_settings  # noqa: E402

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
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


def populate(url: str, images: int, per_study: int, folder: Path, groups: int = 1) -> tuple[object, float]:
    """A repository with ``images`` indexed image records; returns it and the indexing rate (images/s)."""
    settings = load_settings(folder / "repo", db=url)
    repository = init_repository(settings)
    rng = random.Random(7)
    vocabularies = ontology.vocabularies()
    now = datetime.now(UTC)
    started = time.perf_counter()
    seen: set[str] = set()
    studies = images // per_study
    batch_studies = max(1, 20_000 // per_study)
    for first in range(0, studies, batch_studies):
        study_rows, file_rows, image_rows, doc_rows, facet_rows = [], [], [], [], []
        group_rows: dict[str, dict[str, object]] = {}
        for number in range(first, min(first + batch_studies, studies)):
            study_id = f"study-{number:012d}"
            metadata = resolve(rembi(rng, number))
            study_rows.append(
                {
                    "id": study_id,
                    "name": f"Study {number}",
                    "description": "",
                    "created_at": now,
                    "policy": "public" if number % 10 else "private",
                    "rembi": metadata.dump(),
                }
            )
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
                        "sha256": f"{number:032d}{n:032d}",
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
                document = build_document(study_id, f"Study {number}", metadata, facts, vocabularies)
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
        with repository.transaction() as session:
            for table, rows in (  # noqa: B007
                (StudyRow, study_rows),
                (OriginalFileRow, file_rows),
                (ImageRow, image_rows),
                (SearchGroupRow, list(group_rows.values())),
                (SearchDocumentRow, doc_rows),
                (SearchSignatureRow, facet_rows),
            ):
                session.execute(insert(table.__table__), rows)
        done = min(first + batch_studies, studies) * per_study
        print(f"  indexed {done:,} images ({done / (time.perf_counter() - started):,.0f}/s)", flush=True)
    rate = studies * per_study / (time.perf_counter() - started)
    if url.startswith("postgresql"):
        with repository.engine.begin() as connection:
            connection.execute(text("ANALYZE"))
    return repository, rate


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
    args = parser.parse_args()
    results: dict[str, object] = {
        "images": args.images,
        "studies": args.images // args.per_study,
        "groups_per_study": args.groups_per_study,
        "machine": platform.platform(),
    }
    for catalog in args.catalogs.split(","):
        print(f"{catalog}: {args.images:,} images in {args.images // args.per_study:,} studies", flush=True)
        with tempfile.TemporaryDirectory(prefix="fairimage-search-") as folder:
            if catalog == "postgresql":
                schema = f"bench_{int(time.time())}"
                from sqlalchemy import create_engine

                with create_engine(POSTGRES).begin() as connection:
                    connection.execute(text(f"CREATE SCHEMA {schema}"))
                url = f"{POSTGRES}?options=-csearch_path%3D{schema}"
            else:
                url = f"sqlite:///{folder}/catalog.sqlite"
            repository, rate = populate(url, args.images, args.per_study, Path(folder), args.groups_per_study)
            print(f"  indexing: {rate:,.0f} images/s", flush=True)
            results[catalog] = {
                "index_images_per_s": round(rate),
                **measure(repository, random.Random(1), args.queries),
            }
            repository.close()  # type: ignore[attr-defined]
            if catalog == "postgresql":
                with create_engine(POSTGRES).begin() as connection:
                    connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "search.json").write_text(json.dumps(results, indent=1))
    print(f"wrote {RESULTS / 'search.json'}")


if __name__ == "__main__":
    main()
