"""Checking REMBI metadata, and scoring a study's FAIRness. Pure functions on plain data.

``check`` turns a study file's contents into normalised REMBI metadata and a list of problems, each one
line with the field's path, what is wrong and how to fix it::

    biosamples[0].organism: "mouse" is not an NCBITaxon term; did you mean NCBITaxon:10090 (Mus musculus)?

Problems are errors (a value that is wrong: curation refuses it), missing required attributes (the study is
incomplete but may be saved) or hints (a recommended attribute is missing).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from fairimage.model.curation.ontology import Ontology
from fairimage.model.curation.rembi import ATTRIBUTES, Attribute, Level, Rembi, TermRef
from fairimage.model.privacy.phi import scan_fields

Severity = Literal["error", "missing", "hint", "phi"]
# Fields that name people on purpose (contributors, funders) and are not scanned for PHI.
PUBLIC_PEOPLE = ("study.authors", "study.publications", "study.funding", "study.acknowledgements")
# Where the terms of an attribute must sit in its ontology (FBbi roots), so that a stain is not taken for
# an imaging method.
TERM_ROOTS = {
    "study_components[].imaging_methods": ("FBbi:00000222", "FBbi:00000321"),
    "specimens[].preparation_terms": ("FBbi:00000001",),
    "specimens[].channels[].content": ("FBbi:00000455", "FBbi:00000405", "FBbi:00000406"),
    "study.topics": ("EDAM:topic_0003",),
    "analysed_data[].operations": ("EDAM:operation_0004",),
}
LICENSES = {
    "CC0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/",
    "CC-BY-4.0": "https://creativecommons.org/licenses/by/4.0/",
    "CC-BY-SA-4.0": "https://creativecommons.org/licenses/by-sa/4.0/",
    "CC-BY-NC-4.0": "https://creativecommons.org/licenses/by-nc/4.0/",
    "CC-BY-NC-SA-4.0": "https://creativecommons.org/licenses/by-nc-sa/4.0/",
    "CC-BY-ND-4.0": "https://creativecommons.org/licenses/by-nd/4.0/",
    "CC-BY-NC-ND-4.0": "https://creativecommons.org/licenses/by-nc-nd/4.0/",
    "CC-BY-3.0": "https://creativecommons.org/licenses/by/3.0/",
    "ODbL-1.0": "https://opendatacommons.org/licenses/odbl/1-0/",
    "PDDL-1.0": "https://opendatacommons.org/licenses/pddl/1-0/",
}
_ORCID = re.compile(r"^(?:https?://orcid\.org/)?(\d{4}-\d{4}-\d{4}-\d{3}[\dX])$")
_DOI = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:)?(10\.\d{4,9}/\S+)$", re.IGNORECASE)


@dataclass(frozen=True)
class Problem:
    path: str
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass(frozen=True)
class Report:
    """What ``check`` found: the normalised metadata (None if it could not be read at all) and problems."""

    rembi: Rembi | None
    problems: tuple[Problem, ...]

    @property
    def errors(self) -> list[Problem]:
        return [problem for problem in self.problems if problem.severity == "error"]

    @property
    def missing(self) -> list[Problem]:
        return [problem for problem in self.problems if problem.severity == "missing"]

    @property
    def hints(self) -> list[Problem]:
        return [problem for problem in self.problems if problem.severity == "hint"]

    @property
    def phi(self) -> list[Problem]:
        """Text that may identify a person (a warning: publication waits for a steward's acknowledgement)."""
        return [problem for problem in self.problems if problem.severity == "phi"]

    @property
    def complete(self) -> bool:
        return not self.errors and not self.missing

    def to_dict(self) -> dict[str, Any]:
        """As the API and ``--json`` give it."""
        return {
            "complete": self.complete,
            "problems": [
                {"path": p.path, "message": p.message, "severity": p.severity, "line": str(p)}
                for p in self.problems
            ],
        }


def check(data: Any, vocabularies: Mapping[str, Ontology]) -> Report:
    """Read REMBI metadata from ``data`` (a study file's contents), resolve its ontology terms and say what
    is wrong or missing."""
    if not isinstance(data, dict):
        return Report(None, (Problem("(file)", "expected a mapping of REMBI sections, e.g. 'study:'"),))
    try:
        rembi = Rembi.model_validate(data)
    except ValidationError as exc:
        return Report(None, tuple(_pydantic_problems(exc)))
    problems: list[Problem] = []
    normalised = _normalise(rembi, vocabularies, problems)
    problems += _links(normalised)
    problems += missing_attributes(normalised)
    problems += phi_problems(normalised)
    return Report(normalised, tuple(problems))


def free_texts(rembi: Rembi) -> dict[str, str]:
    """The metadata's free text by field path, for the PHI scanner: not ontology terms, not the fields that
    name people on purpose."""
    return {
        path: value
        for path, value in _texts(rembi.dump(), "")
        if not path.startswith(PUBLIC_PEOPLE) and not path.endswith((".id", ".label"))
    }


def phi_problems(rembi: Rembi) -> list[Problem]:
    """Free text of the metadata that may identify a person, one warning per finding."""
    return [
        Problem(
            path,
            f"may identify a person ({finding}); remove it, or a steward acknowledges it before publication",
            "phi",
        )
        for path, finding in scan_fields(free_texts(rembi))
    ]


def _texts(node: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, str):
        yield path, node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _texts(value, f"{path}.{key}" if path else key)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _texts(value, f"{path}[{index}]")


def _pydantic_problems(exc: ValidationError) -> Iterator[Problem]:
    for error in exc.errors():
        path = _path(error["loc"])
        kind = error["type"]
        if kind == "extra_forbidden":
            known = _known_fields(error["loc"][:-1])
            hint = f"; known fields here: {', '.join(known)}" if known else ""
            yield Problem(path, f"is not a REMBI field{hint}")
        elif kind in ("list_type", "model_type", "dict_type", "model_attributes_type"):
            expected = "a list" if kind == "list_type" else "a mapping of fields"
            yield Problem(path, f"write {expected} here ({error['msg'].lower()})")
        else:
            yield Problem(path, f"{error['msg'].lower()} (got {error.get('input')!r})")


def _path(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part not in ("function-before[_from_text(), TermRef]",):
            text += ("." if text else "") + str(part)
    return text or "(file)"


def _known_fields(loc: tuple[Any, ...]) -> list[str]:
    model: Any = Rembi
    for part in loc:
        if isinstance(part, int):
            continue
        annotation = model.model_fields.get(part)
        if annotation is None:
            return []
        model = _model_of(annotation.annotation)
        if model is None:
            return []
    return sorted(name if name != "schema_" else "schema" for name in model.model_fields)


def _model_of(annotation: Any) -> Any:
    """The pydantic model inside an annotation (``list[Biosample]``, ``TermRef | None``), if any."""
    if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
        return annotation
    for argument in getattr(annotation, "__args__", ()):
        found = _model_of(argument)
        if found is not None:
            return found
    return None


def _normalise(rembi: Rembi, vocabularies: Mapping[str, Ontology], problems: list[Problem]) -> Rembi:
    """Resolved terms (CURIE and label), canonical licence, ORCID and DOI spellings."""
    data = rembi.model_copy(deep=True)
    study = data.study
    if study.license is not None:
        license_id = normalise_license(study.license)
        if license_id is None:
            problems.append(
                Problem(
                    "study.license",
                    f"{study.license!r} is not an SPDX licence id; use e.g. CC-BY-4.0 or CC0-1.0",
                )
            )
        else:
            study.license = license_id
    for index, person in enumerate(study.authors):
        if person.orcid is not None:
            orcid = normalise_orcid(person.orcid)
            if orcid is None:
                problems.append(
                    Problem(
                        f"study.authors[{index}].orcid",
                        f"{person.orcid!r} is not a valid ORCID iD (16 digits in four groups, the last a "
                        "check digit); copy it from orcid.org",
                    )
                )
            else:
                person.orcid = orcid
    for index, publication in enumerate(study.publications):
        if publication.doi is not None:
            match = _DOI.match(publication.doi.strip())
            if match is None:
                problems.append(
                    Problem(
                        f"study.publications[{index}].doi",
                        f"{publication.doi!r} is not a DOI; write 10.xxxx/...",
                    )
                )
            else:
                publication.doi = match.group(1)
    for ref, path, attribute in _term_refs(data):
        resolved = _resolve(ref, path, attribute, vocabularies, problems)
        if resolved is not None:
            ref.id, ref.label = resolved
    return data


def _term_refs(rembi: Rembi) -> Iterator[tuple[TermRef, str, Attribute]]:
    by_path = {attribute.path: attribute for attribute in ATTRIBUTES}
    for j, ref in enumerate(rembi.study.topics):
        yield ref, f"study.topics[{j}]", by_path["study.topics"]
    for i, component in enumerate(rembi.study_components):
        for j, ref in enumerate(component.imaging_methods):
            yield (
                ref,
                f"study_components[{i}].imaging_methods[{j}]",
                by_path["study_components[].imaging_methods"],
            )
    for i, biosample in enumerate(rembi.biosamples):
        if biosample.organism is not None:
            yield biosample.organism, f"biosamples[{i}].organism", by_path["biosamples[].organism"]
        for j, ref in enumerate(biosample.cell_types):
            yield ref, f"biosamples[{i}].cell_types[{j}]", by_path["biosamples[].cell_types"]
        for j, ref in enumerate(biosample.organism_parts):
            yield ref, f"biosamples[{i}].organism_parts[{j}]", by_path["biosamples[].organism_parts"]
    for i, specimen in enumerate(rembi.specimens):
        for j, ref in enumerate(specimen.preparation_terms):
            yield ref, f"specimens[{i}].preparation_terms[{j}]", by_path["specimens[].preparation_terms"]
        for j, channel in enumerate(specimen.channels):
            if channel.content is not None:
                path = f"specimens[{i}].channels[{j}].content"
                yield channel.content, path, by_path["specimens[].channels[].content"]
    for i, analysis in enumerate(rembi.analysed_data):
        for j, ref in enumerate(analysis.operations):
            yield ref, f"analysed_data[{i}].operations[{j}]", by_path["analysed_data[].operations"]


def _resolve(
    ref: TermRef,
    path: str,
    attribute: Attribute,
    vocabularies: Mapping[str, Ontology],
    problems: list[Problem],
) -> tuple[str, str] | None:
    bundle = vocabularies[attribute.ontology or ""]
    roots = TERM_ROOTS.get(attribute.path)
    text = ref.text()
    if ref.id is not None:
        term = bundle.term(ref.id)
        if term is None:
            where = (
                f"in the bundled {bundle.name} ({bundle.version})"
                if bundle.curie(ref.id)
                else f"a {bundle.name} term"
            )
            hint = _elsewhere(ref.id, attribute, vocabularies) or _did_you_mean(bundle, ref.label or "")
            problems.append(Problem(path, f"{ref.id!r} is not {where}{hint}"))
            return None
    else:
        found = bundle.find(text)
        if found is None or found.how != "label":
            candidates = [found.term] if found is not None else bundle.suggest(text)
            hint = _did_you_mean(bundle, text, candidates)
            problems.append(
                Problem(path, f"{text!r} is not {_article(bundle.name)} {bundle.name} term{hint}")
            )
            return None
        term = found.term
    if roots and not any(term.id in bundle.descendants(root) for root in roots):
        allowed = " or ".join(
            f"{label} ({root})" for root, label in zip(roots, bundle.labels(roots), strict=True)
        )
        problems.append(Problem(path, f"{term.id} ({term.label}) is not a kind of {allowed}"))
        return None
    return term.id, term.label


def _did_you_mean(bundle: Ontology, text: str, candidates: list[Any] | None = None) -> str:
    found = candidates if candidates is not None else (bundle.suggest(text) if text else [])
    if not found and text:
        found = bundle.complete(text, limit=3)  # the words begin a longer name ("spinning disk")
    if not found:
        return f"; look one up with 'fairimage ontology search {bundle.name.lower()} WORDS'"
    options = " or ".join(f"{term.id} ({term.label})" for term in found[:3])
    return f"; did you mean {options}?"


def _elsewhere(term_id: str, attribute: Attribute, vocabularies: Mapping[str, Ontology]) -> str:
    """``; it is UBERON's 'liver': write it under organism_parts``: a term of another bundle in this field."""
    section = attribute.path.rpartition(".")[0]
    for key, other in vocabularies.items():
        term = other.term(term_id)
        if term is None:
            continue
        fields = [
            a.path.rpartition(".")[2] for a in ATTRIBUTES if a.ontology == key and a.path.startswith(section)
        ]
        where = (
            f"write it under {' or '.join(fields)}"
            if fields
            else f"this field takes {vocabularies[attribute.ontology or ''].name} terms"
        )
        return f"; it is {other.name}'s {term.label!r}: {where}"
    return ""


def _article(name: str) -> str:
    return "an" if name[:1].upper() in "AEFHILMNORSX" else "a"


def _links(rembi: Rembi) -> Iterator[Problem]:
    """Components refer to biosamples, specimens and acquisitions by id; ids are unique."""
    sections = (
        ("biosample", rembi.biosamples),
        ("specimen", rembi.specimens),
        ("acquisition", rembi.image_acquisitions),
    )
    for name, items in sections:
        plural = {"biosample": "biosamples", "specimen": "specimens", "acquisition": "image_acquisitions"}[
            name
        ]
        ids = [item.id for item in items if item.id]
        for duplicate in sorted({item for item in ids if ids.count(item) > 1}):
            yield Problem(plural, f"the id {duplicate!r} is used twice; give each {name} its own id")
        for index, component in enumerate(rembi.study_components):
            wanted = getattr(component, name)
            if wanted is not None and wanted not in ids:
                known = f"the {name} ids are {', '.join(ids)}" if ids else f"add it under {plural}"
                yield Problem(f"study_components[{index}].{name}", f"{wanted!r} is not a {name} id; {known}")


def missing_attributes(rembi: Rembi) -> list[Problem]:
    """Every required attribute that is empty (severity "missing") and recommended one (a "hint")."""
    found: list[Problem] = []
    for attribute, path, value in _values(rembi):
        if attribute.level == "optional" or not _empty(value):
            continue
        severity: Severity = "missing" if attribute.level == "required" else "hint"
        found.append(Problem(path, f"{attribute.level} but missing: {attribute.hint}", severity))
    return found


def _values(rembi: Rembi) -> Iterator[tuple[Attribute, str, Any]]:
    """Each attribute at each place it occurs (one per list item), with its value."""
    data = rembi.model_dump(by_alias=True)
    for attribute in ATTRIBUTES:
        yield from ((attribute, path, value) for path, value in _walk(data, attribute.path.split(".")))


def _walk(node: Any, parts: list[str], prefix: str = "") -> Iterator[tuple[str, Any]]:
    head, rest = parts[0], parts[1:]
    name = head.removesuffix("[]")
    value = node.get(name) if isinstance(node, dict) else None
    path = f"{prefix}.{name}" if prefix else name
    if not head.endswith("[]"):
        if not rest:
            yield path, value
        elif isinstance(value, dict):
            yield from _walk(value, rest, path)
        return
    for index, item in enumerate(value or []):
        if rest:
            yield from _walk(item, rest, f"{path}[{index}]")
        else:
            yield f"{path}[{index}]", item


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def normalise_license(text: str) -> str | None:
    """An SPDX id for the licences data are shared under: ``CC BY 4.0``, ``cc-by-4.0`` or the licence's URL
    -> ``CC-BY-4.0``."""
    cleaned = text.strip()
    for spdx, url in LICENSES.items():
        if cleaned.rstrip("/").lower() in (
            url.rstrip("/").lower(),
            url.rstrip("/").lower().replace("https", "http"),
        ):
            return spdx
        if re.sub(r"[\s_]+", "-", cleaned).lower() == spdx.lower():
            return spdx
    return None


def normalise_orcid(text: str) -> str | None:
    """The ORCID iD in ``text`` if its check digit (ISO 7064 MOD 11-2) is right."""
    match = _ORCID.match(text.strip())
    if match is None:
        return None
    orcid = match.group(1)
    digits = orcid.replace("-", "")
    total = 0
    for digit in digits[:-1]:
        total = (total + int(digit)) * 2
    check = (12 - total % 11) % 11
    expected = "X" if check == 10 else str(check)
    return orcid if digits[-1] == expected else None


@dataclass(frozen=True)
class LevelCount:
    level: Level
    present: int
    total: int


def level_counts(rembi: Rembi) -> list[LevelCount]:
    """How many attributes of each level are filled in (each list item counts)."""
    counts: dict[Level, list[int]] = {"required": [0, 0], "recommended": [0, 0], "optional": [0, 0]}
    for attribute, _, value in _values(rembi):
        counts[attribute.level][1] += 1
        counts[attribute.level][0] += not _empty(value)
    return [LevelCount(level, present, total) for level, (present, total) in counts.items()]


@dataclass(frozen=True)
class StudyFacts:
    """What the repository knows of a study besides its REMBI metadata."""

    image_count: int = 0
    images_with_physical_sizes: int = 0
    images_with_provenance: int = 0
    restricted: bool = False
    has_data_use: bool = False
    published_versions: int = 0


@dataclass(frozen=True)
class Check:
    id: str
    principle: str  # FAIR principle, e.g. "R1.1"
    points: float  # the most it gives
    earned: float
    hint: str  # what would earn the rest


@dataclass(frozen=True)
class FairScore:
    score: int  # 0-100
    checks: tuple[Check, ...]
    levels: tuple[LevelCount, ...]
    by_principle: dict[str, tuple[float, float]] = field(default_factory=dict)  # F/A/I/R: (earned, of)

    @property
    def to_raise(self) -> list[Check]:
        """What is not yet earned, most points first."""
        return sorted((c for c in self.checks if c.earned < c.points), key=lambda c: c.earned - c.points)

    def to_dict(self) -> dict[str, Any]:
        """As the API and ``--json`` give it."""
        return {
            "score": self.score,
            "by_principle": {k: {"earned": round(e, 1), "of": t} for k, (e, t) in self.by_principle.items()},
            "levels": [count.__dict__ for count in self.levels],
            "checks": [{**check.__dict__, "earned": round(check.earned, 1)} for check in self.checks],
            "to_raise": [
                {
                    "id": c.id,
                    "principle": c.principle,
                    "points": round(c.points - c.earned, 1),
                    "hint": c.hint,
                }
                for c in self.to_raise
            ],
        }


def fair_score(rembi: Rembi | None, facts: StudyFacts) -> FairScore:
    """A FAIR completeness score (0-100): findable (identifiers, rich metadata, keywords, a citable
    version), accessible (open protocols, consent terms where access is controlled), interoperable
    (ontology terms, linked sections) and reusable (licence, provenance, physical sizes, ORCIDs, REMBI's
    recommended attributes)."""
    rembi = rembi or Rembi()
    levels = level_counts(rembi)
    share = {count.level: count.present / count.total if count.total else 0.0 for count in levels}
    images = max(facts.image_count, 1)
    components = rembi.study_components
    biosamples = rembi.biosamples
    channels = [channel for specimen in rembi.specimens for channel in specimen.channels]
    authors = rembi.study.authors
    checks = [
        Check("identifiers", "F1", 5, 5, "studies, versions and images have persistent identifiers"),
        Check("required", "F2", 15, 15 * share["required"], "fill in REMBI's required attributes"),
        Check("keywords", "F2", 5, 5 * bool(rembi.study.keywords), "add keywords people search for"),
        Check("citable", "F1", 5, 5 * bool(facts.published_versions), "publish a version to make it citable"),
        Check("protocols", "A1", 5, 5, "served over HTTP as OME-Zarr and GA4GH DRS"),
        Check(
            "consent",
            "A1.2",
            5,
            5 * (facts.has_data_use or not facts.restricted),
            "give the restricted study its consent terms (DUO)",
        ),
        Check(
            "methods",
            "I2",
            8,
            8
            * _fraction(
                components, lambda c: bool(c.imaging_methods) and all(m.id for m in c.imaging_methods)
            ),
            "name each component's imaging methods with FBbi terms",
        ),
        Check(
            "organisms",
            "I2",
            7,
            7 * _fraction(biosamples, lambda b: b.organism is not None and b.organism.id is not None),
            "name each biosample's organism with an NCBITaxon term",
        ),
        Check(
            "channels",
            "I2",
            5,
            5 * _fraction(channels, lambda c: c.content is not None and c.content.id is not None),
            "describe the channels' contents with FBbi terms",
        ),
        Check(
            "links",
            "I3",
            5,
            5 * _fraction(components, lambda c: bool(c.biosample and c.specimen and c.acquisition)),
            "link each component to its biosample, specimen and acquisition",
        ),
        Check("license", "R1.1", 10, 10 * bool(rembi.study.license), "choose a licence, e.g. CC-BY-4.0"),
        Check(
            "provenance",
            "R1.2",
            5,
            5 * min(facts.images_with_provenance / images, 1.0) if facts.image_count else 0,
            "images ingested by fairimage carry their provenance; re-ingest older ones",
        ),
        Check(
            "authors",
            "R1.2",
            5,
            5 * _fraction(authors, lambda a: bool(a.orcid)),
            "give each author's ORCID iD",
        ),
        Check(
            "physical_sizes",
            "R1.3",
            5,
            5 * min(facts.images_with_physical_sizes / images, 1.0) if facts.image_count else 0,
            "ingest files that record pixel sizes (OME-TIFF, ImageJ, OME-Zarr)",
        ),
        Check("recommended", "R1.3", 10, 10 * share["recommended"], "fill in REMBI's recommended attributes"),
    ]
    by_principle: dict[str, tuple[float, float]] = {}
    for item in checks:
        earned, total = by_principle.get(item.principle[0], (0.0, 0.0))
        by_principle[item.principle[0]] = (earned + item.earned, total + item.points)
    total_points = sum(item.points for item in checks)
    score = round(100 * sum(item.earned for item in checks) / total_points)
    return FairScore(score, tuple(checks), tuple(levels), by_principle)


def _fraction(items: list[Any], passes: Any) -> float:
    return sum(1 for item in items if passes(item)) / len(items) if items else 0.0
