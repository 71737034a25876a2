"""Rebuild fairimage's bundled ontology subsets from the ontologies' own OBO files.

    python scripts/build_ontologies.py fbbi fbbi.obo
    python scripts/build_ontologies.py ncbitaxon taxslim.obo --version "..."
    python scripts/build_ontologies.py edam EDAM-bioimaging_alpha06.tsv --version alpha06

``fbbi.obo`` is the release file of the Biological Imaging Methods Ontology
(github.com/Imaging-semantics/fbbi, ``fbbi.obo``; its ``data-version`` header is recorded).
``taxslim.obo`` is the NCBITaxon slim of the OBO NCBITaxon project (github.com/obophenotype/ncbitaxon,
``subsets/taxslim.obo``); it has no release header, so give ``--version``.
``EDAM-bioimaging_alpha06.tsv`` is the BioPortal table of the EDAM-bioimaging release
(github.com/edamontology/edam-bioimaging, ``releases/``); a table names no release, so give ``--version``.

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
}
EDAM_ROOTS = ("EDAM:operation_0004", "EDAM:topic_0003", "EDAM:data_0006", "EDAM:format_1915")
SYNONYM = re.compile(r'^"((?:[^"\\]|\\.)*)"\s+(EXACT|RELATED|BROAD|NARROW)\s*(\S*)')


@dataclass
class Stanza:
    id: str
    name: str = ""
    synonyms: list[tuple[str, str, str]] = field(default_factory=list)  # (text, scope, type)
    parents: list[str] = field(default_factory=list)
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


def subset(name: str, terms: dict[str, Stanza]) -> Iterator[dict[str, object]]:
    if name == "fbbi":
        kept = below(terms, FBBI_ROOTS)
    elif name == "edam":
        kept = below(terms, EDAM_ROOTS)
    else:
        kept = {f"NCBITaxon:{number}" for number in NCBITAXON_KEEP} & terms.keys()
        missing = {f"NCBITaxon:{number}" for number in NCBITAXON_KEEP} - terms.keys()
        if missing:
            raise SystemExit(f"taxa not in the file: {', '.join(sorted(missing))}")
    for term_id in sorted(kept, key=_order):
        term = terms[term_id]
        if name in ("fbbi", "edam"):
            synonyms = [text for text, _, _ in term.synonyms if text != term.name]
        else:
            synonyms = [text for text, _, kind in term.synonyms if kind in COMMON_NAMES]
        yield {
            "id": term_id,
            "label": term.name,
            "synonyms": sorted(set(synonyms)),
            "parents": nearest_kept(terms, term_id, kept),
        }


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
    args = parser.parse_args()
    meta = ONTOLOGIES[args.name]
    if args.name == "edam":
        header, terms = {}, read_bioportal_tsv(args.source, meta["iri_prefix"], meta["prefix"])
    else:
        header, terms = read_obo(args.source)
    version = args.version or header.get("data-version", "").removeprefix("releases/") or header.get("date")
    if not version:
        raise SystemExit(f"{args.source}: it names no release; give the release with --version")
    roots = {"fbbi": list(FBBI_ROOTS), "edam": list(EDAM_ROOTS)}.get(args.name, ["NCBITaxon:1"])
    bundle = {
        **meta,
        "source": meta["source"].format(version=version),
        "version": version,
        "roots": roots,
        "terms": list(subset(args.name, terms)),
    }
    out = args.out or BUNDLE / f"{args.name}.json"
    out.write_text(json.dumps(bundle, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{out}: {len(bundle['terms'])} terms of {bundle['ontology']} {version}")


if __name__ == "__main__":
    main()
