"""Rebuild fairimage's bundled ontology subsets from the ontologies' own OBO files.

    python scripts/build_ontologies.py fbbi fbbi.obo
    python scripts/build_ontologies.py ncbitaxon taxslim.obo --version "..."
    python scripts/build_ontologies.py edam EDAM-bioimaging_alpha06.tsv --version alpha06
    python scripts/build_ontologies.py uberon efo-slim.obo --version 2021-07-25
    python scripts/build_ontologies.py cl cl-basic.obo --part-of cl-base.obo   # after uberon

``fbbi.obo`` is the release file of the Biological Imaging Methods Ontology
(github.com/Imaging-semantics/fbbi, ``fbbi.obo``; its ``data-version`` header is recorded).
``taxslim.obo`` is the NCBITaxon slim of the OBO NCBITaxon project (github.com/obophenotype/ncbitaxon,
``subsets/taxslim.obo``); it has no release header, so give ``--version``.
``EDAM-bioimaging_alpha06.tsv`` is the BioPortal table of the EDAM-bioimaging release
(github.com/edamontology/edam-bioimaging, ``releases/``); a table names no release, so give ``--version``.
``cl-basic.obo`` and ``cl-base.obo`` are Cell Ontology release files of one release
(github.com/obophenotype/cell-ontology; the bundle is the 2022-11-25 release, the last whose OBO files are
committed to that repository, at commit 6f42a863; later ones are published as release assets). The basic
file has the classified ``is_a`` hierarchy, labels and synonyms; the base file adds CL's own ``part_of``
links and logical definitions (``intersection_of``), which tie cell types to anatomy and which the basic
file leaves out. Their ``data-version`` header is recorded.
``efo-slim.obo`` is UBERON's release of its ``efo_slim`` subset (github.com/obophenotype/uberon,
``subsets/efo-slim.obo``, last released 2021-07-25); UBERON's full release files are too large for the
repository and are published elsewhere. It has no release header, so give ``--version``.

What is kept, and why:
- FBbi: every non-obsolete term below the roots in FBBI_ROOTS (imaging methods, resolution-enhancing methods,
  sample preparation, fluorescent labels and proteins, nucleic acid stains), with their labels, synonyms and
  ``is_a`` parents inside the kept set. Search uses the hierarchy: "fluorescence microscopy" finds "confocal".
- NCBITaxon: the organisms in NCBITAXON_KEEP (model organisms, common cell-line donors, frequent pathogens)
  and the clades listed beside them; each kept taxon's parent is its nearest kept ancestor, so "Mammalia"
  finds images of mice. Common names (genbank and common-name synonyms) are kept as synonyms.
- EDAM-bioimaging: every non-obsolete concept of the release (bioimage analysis operations, imaging topics,
  types of image data, formats), with its synonyms and parents. Its identifiers are local names under
  http://edamontology.org/ (``topic_3385``, ``operation_Image_segmentation``), written ``EDAM:`` + name.
- UBERON: every non-obsolete UBERON term of UBERON's ``efo_slim`` subset: the organs, tissues, systems, body
  parts and fluids that the Experimental Factor Ontology offers for a sample's "organism part" (BioSamples,
  Expression Atlas), i.e. what people write in REMBI biosample and specimen fields, about 600 terms (the
  subset file keeps only ``is_a`` links between its own terms, so UBERON's upper classes such as 'organ'
  are not among them). Labels, exact and related synonyms, ``is_a`` parents and ``part_of`` wholes inside
  the kept set: anatomy is searched by both ("nervous system" finds the brain, which is part of it).
- CL: every non-obsolete CL term with an ``is_a`` path to CL:0000000 'cell' (CL identifiers only), with
  labels, exact and related synonyms and ``is_a`` parents inside the kept set; and, as ``part_of``, the
  UBERON terms of the anatomy bundle a cell type is part of, asserted (``relationship: part_of``) or by
  definition ('neural cell' = cell and part_of nervous system). Narrower cell types inherit them, so
  "cells in the nervous system" finds neurons and astrocytes. Links to anatomy outside the UBERON bundle
  are left out (build uberon first).

The output goes to fairimage/ontology/{name}.json, with the source, version and licence.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

BUNDLE = Path(__file__).resolve().parent.parent / "fairimage" / "ontology"
FBBI_ROOTS = (
    "FBbi:00000222",  # imaging method
    "FBbi:00000321",  # resolution-enhancing method (STED, PALM, STORM, SIM ...)
    "FBbi:00000001",  # sample preparation method
    "FBbi:00000455",  # fluorescent label (Alexa Fluor, Cy3, FITC ...)
    "FBbi:00000405",  # fluorescent protein tag (EGFP, mCherry ...)
    "FBbi:00000406",  # probes for nucleic acid (DAPI, Hoechst ...)
)
# Organisms, and the clades between them that people search by.
NCBITAXON_KEEP = (
    # clades
    1,
    131567,
    10239,
    2759,
    2,
    2157,
    33208,
    4751,
    33090,
    554915,
    5794,
    5653,
    3041,
    35493,
    58024,
    3398,
    4447,
    7711,
    6656,
    6231,
    6073,
    6157,
    6340,
    7712,
    7742,
    7898,
    32523,
    40674,
    8782,
    8292,
    9443,
    9989,
    9604,
    10066,
    10088,
    10114,
    50557,
    7147,
    7215,
    6237,
    4890,
    5204,
    4930,
    3701,
    1224,
    1236,
    91347,
    561,
    1239,
    201174,
    # organisms
    9606,
    9598,
    9544,
    9541,
    60711,
    10090,
    10116,
    10029,
    10036,
    9823,
    9913,
    9615,
    9986,
    9031,
    8355,
    8364,
    7955,
    8090,
    7719,
    7227,
    6239,
    45351,
    6087,
    79327,
    6359,
    4932,
    559292,
    4896,
    5476,
    3702,
    4100,
    4577,
    4530,
    39947,
    3218,
    3055,
    44689,
    5833,
    5811,
    5691,
    5911,
    562,
    1423,
    1280,
    1773,
    2697049,
)
COMMON_NAMES = ("genbank_common_name", "common_name")
ONTOLOGIES = {
    "fbbi": {
        "ontology": "FBbi",
        "title": "Biological Imaging Methods Ontology",
        "prefix": "FBbi",
        "iri_prefix": "http://purl.obolibrary.org/obo/FBbi_",
        "source": "https://github.com/Imaging-semantics/fbbi (fbbi.obo)",
        "license": "CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/)",
    },
    "ncbitaxon": {
        "ontology": "NCBITaxon",
        "title": "NCBI organismal classification",
        "prefix": "NCBITaxon",
        "iri_prefix": "http://purl.obolibrary.org/obo/NCBITaxon_",
        "source": "https://github.com/obophenotype/ncbitaxon (subsets/taxslim.obo)",
        "license": "CC0 1.0 (https://creativecommons.org/publicdomain/zero/1.0/)",
    },
    "edam": {
        "ontology": "EDAM-bioimaging",
        "title": "EDAM-bioimaging: bioimage informatics operations, topics, data and formats",
        "prefix": "EDAM",
        "iri_prefix": "http://edamontology.org/",
        "source": "https://github.com/edamontology/edam-bioimaging (releases/EDAM-bioimaging_{version}.tsv)",
        # The release files state no licence; EDAM, which EDAM-bioimaging extends, is CC BY-SA 4.0.
        "license": "CC BY-SA 4.0 (https://creativecommons.org/licenses/by-sa/4.0/), as EDAM",
    },
    "uberon": {
        "ontology": "UBERON",
        "title": "Uberon multi-species anatomy ontology (efo_slim subset)",
        "prefix": "UBERON",
        "iri_prefix": "http://purl.obolibrary.org/obo/UBERON_",
        "source": "https://github.com/obophenotype/uberon (subsets/efo-slim.obo)",
        "license": "CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/)",
    },
    "cl": {
        "ontology": "CL",
        "title": "Cell Ontology",
        "prefix": "CL",
        "iri_prefix": "http://purl.obolibrary.org/obo/CL_",
        "source": (
            "https://github.com/obophenotype/cell-ontology (cl-basic.obo and cl-base.obo, release {version})"
        ),
        "license": "CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/)",
    },
}
EDAM_ROOTS = ("EDAM:operation_0004", "EDAM:topic_0003", "EDAM:data_0006", "EDAM:format_1915")
CL_ROOT = "CL:0000000"  # cell
PART_OF = ("part_of", "BFO:0000050")
# Synonym scopes kept for CL and UBERON: BROAD and NARROW ones name other things ("cervix" for the uterine
# cervix is also the cervix of the tooth).
CLOSE_SCOPES = ("EXACT", "RELATED")
SYNONYM = re.compile(r'^"((?:[^"\\]|\\.)*)"\s+(EXACT|RELATED|BROAD|NARROW)\s*(\S*)')


@dataclass
class Stanza:
    id: str
    name: str = ""
    synonyms: list[tuple[str, str, str]] = field(default_factory=list)  # (text, scope, type)
    parents: list[str] = field(default_factory=list)
    part_of: list[str] = field(default_factory=list)  # asserted, or in a logical definition
    obsolete: bool = False


def read_obo(path: Path) -> tuple[dict[str, str], dict[str, Stanza]]:
    """The header tags and the [Term] stanzas of an OBO 1.2/1.4 file."""
    header: dict[str, str] = {}
    terms: dict[str, Stanza] = {}
    current: Stanza | None = None
    in_header, in_term = True, False
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.startswith("["):
            in_header, in_term = False, line == "[Term]"
            current = None
            continue
        tag, _, value = line.partition(": ")
        value = value.split(" ! ")[0].strip()
        if in_header and tag:
            header.setdefault(tag, value)
        if not in_term:
            continue
        if tag == "id":
            current = terms.setdefault(value, Stanza(value))
        elif current is None:
            continue
        elif tag == "name":
            current.name = value
        elif tag == "is_a":
            current.parents.append(value.split()[0])
        elif (
            tag in ("relationship", "intersection_of")
            and value.split()[0] in PART_OF
            and "all_only" not in value  # "only part of" restricts; it does not say "part of"
        ):
            current.part_of.append(value.split()[1])
        elif tag == "is_obsolete":
            current.obsolete = value == "true"
        elif tag == "synonym" and (match := SYNONYM.match(value)):
            current.synonyms.append((match.group(1).replace('\\"', '"'), match.group(2), match.group(3)))
    return header, terms


def read_bioportal_tsv(path: Path, iri_prefix: str, prefix: str) -> dict[str, Stanza]:
    """The classes of a BioPortal TSV export (``Class ID``, ``Preferred Label``, ``Synonyms``, ``Obsolete``,
    ``Parents``; several values are separated by ``|``), by CURIE. Classes outside ``iri_prefix`` and
    parents such as owl:Thing are left out."""

    def curie(iri: str) -> str | None:
        return f"{prefix}:{iri[len(iri_prefix) :]}" if iri.startswith(iri_prefix) else None

    terms: dict[str, Stanza] = {}
    with path.open(encoding="utf-8", newline="") as table:
        for row in csv.DictReader(table, delimiter="\t"):
            term_id = curie(row["Class ID"].strip())
            if term_id is None:
                continue
            terms[term_id] = Stanza(
                term_id,
                name=row["Preferred Label"].strip(),
                synonyms=[(text.strip(), "", "") for text in row["Synonyms"].split("|") if text.strip()],
                parents=[p for p in (curie(iri.strip()) for iri in row["Parents"].split("|")) if p],
                obsolete=row["Obsolete"].strip().upper() == "TRUE",
            )
    return terms


def below(terms: dict[str, Stanza], roots: tuple[str, ...]) -> set[str]:
    """The roots and every non-obsolete term with an is_a path to one of them."""
    children: dict[str, list[str]] = {}
    for term in terms.values():
        for parent in term.parents:
            children.setdefault(parent, []).append(term.id)
    kept: set[str] = set()
    stack = [root for root in roots if root in terms]
    while stack:
        term_id = stack.pop()
        if term_id in kept or terms[term_id].obsolete:
            continue
        kept.add(term_id)
        stack.extend(child for child in children.get(term_id, []) if child in terms)
    return kept


def nearest_kept(terms: dict[str, Stanza], term_id: str, kept: set[str]) -> list[str]:
    """The closest ancestors of ``term_id`` that are kept (walking is_a through dropped terms)."""
    found: list[str] = []
    stack = list(terms[term_id].parents)
    seen: set[str] = set()
    while stack:
        parent = stack.pop()
        if parent in seen or parent not in terms:
            continue
        seen.add(parent)
        if parent in kept:
            found.append(parent)
        else:
            stack.extend(terms[parent].parents)
    return sorted(set(found))


def subset(
    name: str, terms: dict[str, Stanza], anatomy: set[str] | None = None
) -> Iterator[dict[str, object]]:
    """The kept terms of ontology ``name`` as the bundle lists them; ``anatomy`` (CL only) is the UBERON
    bundle's identifiers, the wholes a cell type's ``part_of`` may name."""
    if name == "fbbi":
        kept = below(terms, FBBI_ROOTS)
    elif name == "edam":
        kept = below(terms, EDAM_ROOTS)
    elif name == "cl":
        kept = {term_id for term_id in below(terms, (CL_ROOT,)) if term_id.startswith("CL:")}
    elif name == "uberon":
        kept = {term.id for term in terms.values() if term.id.startswith("UBERON:") and not term.obsolete}
    else:
        kept = {f"NCBITaxon:{number}" for number in NCBITAXON_KEEP} & terms.keys()
        missing = {f"NCBITaxon:{number}" for number in NCBITAXON_KEEP} - terms.keys()
        if missing:
            raise SystemExit(f"taxa not in the file: {', '.join(sorted(missing))}")
    wholes = kept if name == "uberon" else (anatomy or set())
    for term_id in sorted(kept, key=_order):
        term = terms[term_id]
        if name in ("fbbi", "edam"):
            synonyms = [text for text, _, _ in term.synonyms if text != term.name]
        elif name in ("cl", "uberon"):
            synonyms = [
                text for text, scope, _ in term.synonyms if scope in CLOSE_SCOPES and text != term.name
            ]
        else:
            synonyms = [text for text, _, kind in term.synonyms if kind in COMMON_NAMES]
        entry: dict[str, object] = {
            "id": term_id,
            "label": term.name,
            "synonyms": sorted(set(synonyms)),
            "parents": nearest_kept(terms, term_id, kept),
        }
        if name in ("cl", "uberon"):
            entry["part_of"] = sorted(
                {whole for whole in term.part_of if whole in wholes and whole != term_id}
            )
        yield entry


def release(header: dict[str, str]) -> str | None:
    """The release a file's header names: ``data-version: releases/2020-11-06`` and
    ``data-version: cl/releases/2022-11-25/cl-base.owl`` -> the date; else the ``date`` tag."""
    version = header.get("data-version", "")
    found = re.search(r"(?:^|/)releases/([^/]+)", version)
    return (found.group(1) if found else version) or header.get("date")


def add_part_of(terms: dict[str, Stanza], version: str, path: Path) -> None:
    """Add the ``part_of`` links of another file of the same release (CL's base file) to ``terms``."""
    header, linked = read_obo(path)
    if release(header) != version:
        raise SystemExit(f"{path}: release {release(header)}, not {version}; use the same release's files")
    for term_id, stanza in linked.items():
        if term_id in terms:
            terms[term_id].part_of.extend(stanza.part_of)


def anatomy_ids(path: Path) -> set[str]:
    """The term identifiers of a built UBERON bundle."""
    if not path.is_file():
        raise SystemExit(f"{path}: no UBERON bundle; build it first ('uberon efo-slim.obo --version ...')")
    return {term["id"] for term in json.loads(path.read_text(encoding="utf-8"))["terms"]}


def _order(term_id: str) -> tuple[str, int, str]:
    """Numeric identifiers in numeric order, named ones (EDAM's) by name: the same file on every run."""
    prefix, _, local = term_id.partition(":")
    return prefix, int(local) if local.isdigit() else 0, local


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("name", choices=sorted(ONTOLOGIES))
    parser.add_argument(
        "source", type=Path, help="the ontology's release file: OBO, or BioPortal TSV for edam"
    )
    parser.add_argument("--out", type=Path, default=None, help="where to write (default: the package)")
    parser.add_argument("--version", default=None, help="the release, where the file's header names none")
    parser.add_argument(
        "--part-of",
        type=Path,
        default=None,
        help="cl: the same release's cl-base.obo, whose part_of links and definitions are added",
    )
    parser.add_argument(
        "--anatomy",
        type=Path,
        default=BUNDLE / "uberon.json",
        help="cl: the UBERON bundle whose terms cell types may be part of (default: the package's)",
    )
    args = parser.parse_args()
    meta = ONTOLOGIES[args.name]
    if args.name == "edam":
        header, terms = {}, read_bioportal_tsv(args.source, meta["iri_prefix"], meta["prefix"])
    else:
        header, terms = read_obo(args.source)
    version = args.version or release(header)
    if not version:
        raise SystemExit(f"{args.source}: it names no release; give the release with --version")
    roots = {
        "fbbi": list(FBBI_ROOTS),
        "edam": list(EDAM_ROOTS),
        "cl": [CL_ROOT],
    }.get(args.name, ["NCBITaxon:1"])
    anatomy = anatomy_ids(args.anatomy) if args.name == "cl" else None
    if args.part_of is not None:
        add_part_of(terms, version, args.part_of)
    kept = list(subset(args.name, terms, anatomy))
    if args.name == "uberon":
        # The slim leaves out UBERON's upper classes (organ, tissue): its tops are what nothing holds.
        roots = [str(term["id"]) for term in kept if not term["parents"] and not term["part_of"]]
    bundle = {
        **meta,
        "source": meta["source"].format(version=version),
        "version": version,
        "roots": roots,
        "terms": kept,
    }
    out = args.out or BUNDLE / f"{args.name}.json"
    out.write_text(json.dumps(bundle, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{out}: {len(bundle['terms'])} terms of {bundle['ontology']} {version}")


if __name__ == "__main__":
    main()
