"""Compare fairimage's de-identification with another de-identifier's on the same files, attribute by
attribute of PS3.15 Table E.1-1: what each did to every attribute present (removed, emptied, replaced,
kept), and where they differ.

    pip download --no-deps -d /tmp/dgn dicognito && unzip /tmp/dgn/dicognito-*.whl -d /tmp/dgn/site
    python scripts/compare_deid.py --dicognito /tmp/dgn/site

dicognito is not a dependency of fairimage: give the folder it is unpacked in. The files are pydicom's test
files (pydicom-data).
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pydicom
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fairimage import ontology  # noqa: E402
from fairimage.formats.deid import deidentify  # noqa: E402
from fairimage.model.privacy import deid  # noqa: E402

FILES = [
    "CT_small.dcm",
    "MR_small.dcm",
    "rtplan.dcm",
    "rtstruct.dcm",
    "test-SR.dcm",
    "US1_UNCR.dcm",
    "emri_small.dcm",
    "JPEG2000.dcm",
    "waveform_ecg.dcm",
    "MR-SIEMENS-DICOM-WithOverlays.dcm",
]


def outcome(before: Any, after: Dataset, tag: Any) -> str:
    if tag not in after:
        return "removed"
    value = after[tag].value
    if value in (None, "", b"", []):
        return "emptied"
    return "kept" if value == before.value else "replaced"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dicognito", type=Path, required=True, help="where dicognito's wheel is unpacked")
    args = parser.parse_args()
    sys.path.insert(0, str(args.dicognito))
    from dicognito.anonymizer import Anonymizer

    profile = ontology.dicom_profile()
    agree, differ = Counter(), Counter()
    examples: dict[tuple[str, str, str], str] = {}
    private_left = Counter()
    for name in FILES:
        original = pydicom.dcmread(get_testdata_file(name), force=True)
        ours, theirs = copy.deepcopy(original), copy.deepcopy(original)
        deidentify(ours, profile, b"compare-key-0123456789abcdef0123")
        Anonymizer(seed="compare").anonymize(theirs)
        private_left["fairimage"] += sum(1 for e in ours if e.tag.is_private)
        private_left["dicognito"] += sum(1 for e in theirs if e.tag.is_private)
        for element in original:
            row = profile.attribute(int(element.tag))
            if row is None or element.tag.is_private or element.value in (None, "", b""):
                continue
            mine, other = outcome(element, ours, element.tag), outcome(element, theirs, element.tag)
            key = (row.name, deid.resolve(row.action), f"fairimage {mine}, dicognito {other}")
            if mine == other:
                agree[mine] += 1
            else:
                differ[(mine, other)] += 1
                examples.setdefault(key, name)
    print(f"attributes of Table E.1-1 present, agreeing: {sum(agree.values())} {dict(agree)}")
    print(f"differing: {sum(differ.values())}")
    for (mine, other), count in differ.most_common():
        print(f"  fairimage {mine:8s} dicognito {other:8s} {count}")
    print("examples (attribute, Basic Profile action as fairimage applies it, what each did):")
    for (attribute, action, what), name in sorted(examples.items()):
        print(f"  {attribute} [{action}]: {what} ({name})")
    print(f"private attributes left: {dict(private_left)}")


if __name__ == "__main__":
    main()
