"""Rebuild fairimage/ontology/duo.json, the bundled Data Use Ontology terms, from DUO's own files.

    python scripts/build_duo.py duo.csv [--owl duo.owl] [--version 2021-02-23]

``duo.csv`` is the term table the EBISPOT/DUO repository publishes beside each release (id, shorthand,
label, description). The data use permissions form a hierarchy that the CSV does not carry; it is read
from the release's OWL file when ``--owl`` is given (``rdfs:subClassOf`` between DUO classes), and
otherwise taken as the DUO documentation draws it: GRU above HMB above DS, GRU above POA, NRES apart.
Term IDs are normalised on the way in: some OWL releases write an ID with an extra leading zero
(``DUO_00000042``), which is the same term as ``DUO:0000042``.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

PERMISSION = "DUO:0000001"
MODIFIER = "DUO:0000017"
DOCUMENTED_PARENTS = {
    "DUO:0000004": PERMISSION,  # NRES
    "DUO:0000042": PERMISSION,  # GRU
    "DUO:0000006": "DUO:0000042",  # HMB is a kind of GRU
    "DUO:0000007": "DUO:0000006",  # DS is a kind of HMB
    "DUO:0000011": "DUO:0000042",  # POA is a kind of GRU
}
RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
RDFS = "{http://www.w3.org/2000/01/rdf-schema#}"
OWL = "{http://www.w3.org/2002/07/owl#}"
TERM = re.compile(r"DUO[:_](\d+)$")


def normalise(text: str) -> str:
    """``DUO_00000042``, ``DUO:0000042`` or the term's IRI -> ``DUO:0000042``."""
    match = TERM.search(text.strip())
    if match is None:
        raise SystemExit(f"{text!r} is not a DUO term id")
    return f"DUO:{int(match.group(1)):07d}"


def owl_parents(path: Path) -> tuple[dict[str, str], str]:
    """The DUO parent of each DUO class, and the release's version IRI."""
    root = ET.parse(path).getroot()
    version = ""
    for ontology in root.iter(f"{OWL}Ontology"):
        for element in ontology.iter(f"{OWL}versionIRI"):
            version = element.get(f"{RDF}resource", "")
    parents = {}
    for cls in root.iter(f"{OWL}Class"):
        about = cls.get(f"{RDF}about", "")
        if not TERM.search(about):
            continue
        for parent in cls.findall(f"{RDFS}subClassOf"):
            resource = parent.get(f"{RDF}resource", "")
            if TERM.search(resource):
                parents[normalise(about)] = normalise(resource)
    return parents, version


def build(csv_path: Path, owl_path: Path | None, version: str) -> dict[str, object]:
    parents, version_iri = owl_parents(owl_path) if owl_path else ({}, "")
    version_iri = version_iri or f"http://purl.obolibrary.org/obo/duo/releases/{version}/duo.owl"
    terms = []
    with csv_path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            term_id = normalise(row["id"])
            if term_id in (PERMISSION, MODIFIER):
                continue
            kind = "permission" if "data use permission" in row["description"] else "modifier"
            parent = parents.get(term_id) or DOCUMENTED_PARENTS.get(term_id) or MODIFIER
            terms.append(
                {
                    "id": term_id,
                    "shorthand": row["shorthand"],
                    "label": row["label"],
                    "definition": row["description"],
                    "kind": kind,
                    "parent": parent if kind == "permission" else MODIFIER,
                }
            )
    terms.sort(key=lambda term: term["id"])
    return {
        "ontology": "DUO",
        "title": "Data Use Ontology",
        "version": version,
        "version_iri": version_iri,
        "source": "https://github.com/EBISPOT/DUO (duo.csv and duo.owl of the release)",
        "license": "CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/)",
        "terms": terms,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("csv", type=Path)
    parser.add_argument("--owl", type=Path)
    parser.add_argument("--version", default="2021-02-23")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parents[1] / "fairimage" / "ontology" / "duo.json"
    )
    args = parser.parse_args()
    bundle = build(args.csv, args.owl, args.version)
    args.out.write_text(json.dumps(bundle, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{args.out}: {len(bundle['terms'])} terms, {bundle['version_iri']}")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
