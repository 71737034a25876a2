"""Ontology terms as curation and search use them: look a term up by CURIE, IRI, label or synonym, suggest
one for free text, complete a prefix, and walk the ``is_a`` hierarchy (a search for "fluorescence
microscopy" also finds "confocal microscopy") and, for anatomy and cell types, ``part_of`` (a neuron is a
neural cell, which is part of the nervous system; the brain is part of the nervous system too).

Pure: ``fairimage.ontology`` loads the bundled files into these objects.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

_SEPARATOR = re.compile(r"[\s_\-/(),.]+")


@dataclass(frozen=True)
class OntologyTerm:
    id: str  # CURIE, e.g. FBbi:00000251
    label: str
    synonyms: tuple[str, ...] = ()
    parents: tuple[str, ...] = ()  # is_a, inside the bundle
    iri: str = ""
    part_of: tuple[str, ...] = ()  # wholes, in this bundle or another (a CL cell type: UBERON anatomy)


@dataclass(frozen=True)
class Match:
    """A term found for some text, and how: "id", "label", "synonym" or "suggestion" (a near miss)."""

    term: OntologyTerm
    how: str


@dataclass(frozen=True)
class Ontology:
    name: str  # short name: FBbi, NCBITaxon
    title: str
    version: str
    license: str
    source: str
    prefix: str
    iri_prefix: str
    terms: tuple[OntologyTerm, ...] = field(repr=False)

    @cached_property
    def _by_id(self) -> dict[str, OntologyTerm]:
        return {term.id: term for term in self.terms}

    @cached_property
    def _by_name(self) -> dict[str, list[tuple[OntologyTerm, str]]]:
        names: dict[str, list[tuple[OntologyTerm, str]]] = {}
        for term in self.terms:
            names.setdefault(fold(term.label), []).append((term, "label"))
            for synonym in term.synonyms:
                names.setdefault(fold(synonym), []).append((term, "synonym"))
        return names

    @cached_property
    def _children(self) -> dict[str, tuple[str, ...]]:
        children: dict[str, list[str]] = {}
        for term in self.terms:
            for parent in term.parents:
                children.setdefault(parent, []).append(term.id)
        return {parent: tuple(ids) for parent, ids in children.items()}

    def curie(self, text: str) -> str | None:
        """``FBbi:00000251``, ``fbbi:00000251``, ``FBbi_00000251``, ``obo:FBbi_00000251`` or the term's IRI ->
        ``FBbi:00000251``; None if ``text`` is not an identifier of this ontology."""
        text = text.strip()
        if text.startswith(self.iri_prefix):
            local = text[len(self.iri_prefix) :]
        else:
            # The prefix ends at the first ':' or '_' (EDAM's local names hold '_' of their own).
            text = text.removeprefix("obo:")
            size = len(self.prefix)
            head, separator, local = text[:size], text[size : size + 1], text[size + 1 :]
            if head.lower() != self.prefix.lower() or separator not in (":", "_"):
                return None
        return f"{self.prefix}:{local}" if local else None

    def term(self, text: str) -> OntologyTerm | None:
        """The term an identifier names, if it is in the bundle."""
        curie = self.curie(text)
        return self._by_id.get(curie) if curie is not None else None

    def find(self, text: str) -> Match | None:
        """The term ``text`` names: by identifier, else by exact label or synonym (case and punctuation
        aside); a label beats a synonym, and a name shared by several terms is ambiguous (None)."""
        by_id = self.term(text)
        if by_id is not None:
            return Match(by_id, "id")
        found = self._by_name.get(fold(text), [])
        labels = [term for term, how in found if how == "label"]
        if len(labels) == 1:
            return Match(labels[0], "label")
        distinct = {term.id: term for term, _ in found}
        if len(distinct) == 1:
            return Match(next(iter(distinct.values())), "synonym")
        return None

    def suggest(self, text: str, limit: int = 3) -> list[OntologyTerm]:
        """Terms whose label or synonym is close to ``text`` (for "did you mean ...?")."""
        key = fold(text)
        if not key:
            return []
        # A plural of a name ("astrocytes", "nuclei") means that name: no need for near misses.
        plural = [term for name in _singulars(key) for term, _ in self._by_name.get(name, [])]
        if plural:
            return list({term.id: term for term in plural}.values())[:limit]
        close = difflib.get_close_matches(key, list(self._by_name), n=limit * 2, cutoff=0.75)
        picked: dict[str, OntologyTerm] = {}
        for name in close:
            for term, _ in self._by_name[name]:
                picked.setdefault(term.id, term)
        return list(picked.values())[:limit]

    def complete(self, query: str, limit: int = 20) -> list[OntologyTerm]:
        """Terms for an autocomplete box: an identifier, then labels that start with the words typed, then
        labels or synonyms that contain every word, shorter (more general) names first."""
        exact = self.term(query)
        words = fold(query).split()
        ranked: list[tuple[int, int, str, OntologyTerm]] = []
        for term in self.terms:
            names = [fold(term.label), *map(fold, term.synonyms)]
            if not words:
                rank = 3
            elif names[0].startswith(" ".join(words)):
                rank = 0
            elif any(all(_has_word(name, word) for word in words) for name in names):
                rank = 1
            elif any(all(word in name for word in words) for name in names):
                rank = 2
            else:
                continue
            ranked.append((rank, len(term.label), term.label.lower(), term))
        found = [term for *_, term in sorted(ranked, key=lambda item: item[:3])]
        if exact is not None:
            found = [exact, *(term for term in found if term.id != exact.id)]
        return found[:limit]

    def descendants(self, term_id: str) -> set[str]:
        """The term and every term below it."""
        found: set[str] = set()
        stack = [term_id]
        while stack:
            current = stack.pop()
            if current not in found:
                found.add(current)
                stack.extend(self._children.get(current, ()))
        return found

    def ancestors(self, term_id: str) -> list[OntologyTerm]:
        """Every term above ``term_id``, nearest first."""
        found: list[OntologyTerm] = []
        seen: set[str] = set()
        queue = list(self._by_id[term_id].parents) if term_id in self._by_id else []
        while queue:
            current = queue.pop(0)
            if current in seen or current not in self._by_id:
                continue
            seen.add(current)
            found.append(self._by_id[current])
            queue.extend(self._by_id[current].parents)
        return found

    def labels(self, ids: Iterable[str]) -> list[str]:
        return [self._by_id[term_id].label for term_id in ids if term_id in self._by_id]


def broader(term_id: str, vocabularies: Mapping[str, Ontology]) -> list[OntologyTerm]:
    """Every term above ``term_id`` by ``is_a`` or ``part_of``, across the bundles (a cell type's anatomy
    and what that is part of), nearest first: what a search for a broad term or a whole should find it by."""
    by_prefix = {bundle.prefix: bundle for bundle in vocabularies.values()}

    def lookup(curie: str) -> OntologyTerm | None:
        bundle = by_prefix.get(curie.partition(":")[0])
        return bundle.term(curie) if bundle is not None else None

    start = lookup(term_id)
    found: list[OntologyTerm] = []
    seen = {term_id}
    queue = [*start.parents, *start.part_of] if start is not None else []
    while queue:
        current = queue.pop(0)
        term = lookup(current) if current not in seen else None
        seen.add(current)
        if term is not None:
            found.append(term)
            queue.extend([*term.parents, *term.part_of])
    return found


def fold(text: str) -> str:
    """Text as names are compared: lower case, punctuation and runs of spaces as one space."""
    return " ".join(_SEPARATOR.split(text.lower())).strip()


def _singulars(key: str) -> list[str]:
    """What a folded plural may be the plural of (English: cells, nuclei, lamellae)."""
    head, _, last = key.rpartition(" ")
    forms = [last[:-1] if last.endswith("s") else "", last[:-2] if last.endswith("es") else ""]
    forms += [last[:-1] + "us" if last.endswith("i") else "", last[:-1] if last.endswith("ae") else ""]
    return [f"{head} {form}".strip() for form in forms if len(form) > 2]


def _has_word(name: str, word: str) -> bool:
    return any(part.startswith(word) for part in name.split())
