"""Leak-free splits: items (images) are assigned to train/validation/test by group (every field of a well,
every slice of a patient, every well of a plate: whatever must not be on both sides), with each stratum
(class, condition) split in the asked proportions, the same way for the same seed. Pure functions."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from fairimage.model.errors import InvalidInputError

SPLIT_NAMES = ("train", "validation", "test")


@dataclass(frozen=True)
class Proportions:
    """The asked share of each split, in percent, in order."""

    shares: tuple[tuple[str, float], ...]

    def __str__(self) -> str:
        return "/".join(f"{share:g}" for _, share in self.shares)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.shares)


def parse_split(text: str) -> Proportions:
    """``70/15/15`` (train/validation/test) or ``80/20`` (train/test), in percent, adding up to 100."""
    parts = text.split("/")
    if len(parts) not in (2, 3):
        raise InvalidInputError(
            f"--split {text}: give train/validation/test (e.g. 70/15/15) or train/test (e.g. 80/20), in "
            "percent"
        )
    try:
        shares = [float(part) for part in parts]
    except ValueError:
        raise InvalidInputError(f"--split {text}: each part is a percentage, e.g. 70/15/15") from None
    if any(share < 0 for share in shares):
        raise InvalidInputError(f"--split {text}: a share cannot be negative")
    if abs(sum(shares) - 100) > 0.01:
        raise InvalidInputError(
            f"--split {text}: the parts add up to {sum(shares):g}; they must add up to 100"
        )
    names = SPLIT_NAMES if len(parts) == 3 else ("train", "test")
    return Proportions(tuple(zip(names, shares, strict=True)))


@dataclass(frozen=True)
class Item:
    """One item of a dataset as the split sees it: its key, the group it must stay with, its stratum."""

    key: str
    group: str
    stratum: str = ""


def assign_splits(items: Sequence[Item], proportions: Proportions, seed: int) -> dict[str, str]:
    """Each item's split (item key -> split name). A group's items always share a split; within each
    stratum (a group's is the most common of its items'), groups go, largest first and in an order the
    seed shuffles, to the split furthest below its share of that stratum's items (in items; a tie goes to
    the split furthest below its share of all items). The same items, proportions and seed give the same
    splits."""
    groups: dict[str, list[Item]] = {}
    for item in items:
        groups.setdefault(item.group, []).append(item)
    strata: dict[str, list[str]] = {}
    for group, members in groups.items():
        stratum = _most_common(item.stratum for item in members)
        strata.setdefault(stratum, []).append(group)
    chooser = random.Random(seed)
    split_of_group: dict[str, str] = {}
    overall = {split: len(items) * share / 100 for split, share in proportions.shares}
    placed = dict.fromkeys(overall, 0)
    for stratum in sorted(strata):
        names = sorted(strata[stratum])
        chooser.shuffle(names)
        names.sort(key=lambda group: -len(groups[group]))  # stable: the shuffle orders groups of one size
        total = sum(len(groups[group]) for group in names)
        targets = {split: total * share / 100 for split, share in proportions.shares}
        counts = dict.fromkeys(targets, 0)
        for group in names:
            split = max(
                (split for split in proportions.names if targets[split] > 0),
                key=lambda split: (targets[split] - counts[split], overall[split] - placed[split]),
            )
            split_of_group[group] = split
            counts[split] += len(groups[group])
            placed[split] += len(groups[group])
    return {item.key: split_of_group[item.group] for item in items}


def _most_common(values: Iterable[str]) -> str:
    counts = Counter(values)
    best = max(counts.values())
    return min(value for value, count in counts.items() if count == best)


@dataclass(frozen=True)
class CheckedItem:
    key: str
    split: str
    group: str
    stratum: str
    content: str | None  # a hash of its pixels; None where they are not known


@dataclass
class SplitReport:
    """What ``check_splits`` found: groups on two sides, the same pixels on two sides, counts per split."""

    leaks: list[str] = field(default_factory=list)  # one line per group found in more than one split
    duplicates: list[str] = field(default_factory=list)  # one line per content found in more than one split
    balance: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> stratum -> items

    @property
    def ok(self) -> bool:
        return not self.leaks and not self.duplicates


def check_splits(items: Sequence[CheckedItem]) -> SplitReport:
    """Leaks (a group in two splits), duplicates across splits (the same pixels on two sides, whatever the
    groups say) and the balance of strata in each split."""
    report = SplitReport()
    splits_of_group: dict[str, set[str]] = {}
    items_of_content: dict[str, list[CheckedItem]] = {}
    for item in items:
        splits_of_group.setdefault(item.group, set()).add(item.split)
        if item.content is not None:
            items_of_content.setdefault(item.content, []).append(item)
        by_stratum = report.balance.setdefault(item.split, {})
        by_stratum[item.stratum] = by_stratum.get(item.stratum, 0) + 1
    for group, sides in sorted(splits_of_group.items()):
        if len(sides) > 1:
            report.leaks.append(f"group {group!r} is in {', '.join(sorted(sides))}")
    for content, copies in sorted(items_of_content.items()):
        if len({copy.split for copy in copies}) > 1:
            where = ", ".join(f"{copy.key} ({copy.split})" for copy in sorted(copies, key=lambda c: c.key))
            report.duplicates.append(f"the same pixels (content {content[:12]}) in {where}")
    return report
