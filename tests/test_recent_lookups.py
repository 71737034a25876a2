"""The catalog lookups the chunk path keeps in memory: forgotten at once when any process commits a change,
and after their time in any case."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fairimage.services.repository import ChangeCounter, RecentLookups


def _counting(values: list[str]) -> tuple[list[int], Callable[[], str]]:
    calls = [0]

    def load() -> str:
        calls[0] += 1
        return values[calls[0] - 1]

    return calls, load


def test_a_change_committed_by_another_process_is_seen_at_the_next_lookup(tmp_path: Path) -> None:
    server = RecentLookups(ChangeCounter(tmp_path / "changes"), ttl_seconds=3600)
    command_line = RecentLookups(ChangeCounter(tmp_path / "changes"), ttl_seconds=3600)
    calls, load = _counting(["public", "restricted"])
    assert server.get("image", load) == "public"
    assert server.get("image", load) == "public" and calls == [1]  # from memory
    command_line.changed()  # what Repository.transaction does after a commit
    assert not server.knows("image")
    assert server.get("image", load) == "restricted" and calls == [2]


def test_lookups_expire(tmp_path: Path) -> None:
    recent = RecentLookups(ChangeCounter(tmp_path / "changes"), ttl_seconds=0.0)
    calls, load = _counting(["a", "b"])
    assert recent.get("key", load) == "a"
    assert recent.get("key", load) == "b" and calls == [2]


def test_a_lookup_that_raced_a_commit_is_not_kept(tmp_path: Path) -> None:
    recent = RecentLookups(ChangeCounter(tmp_path / "changes"), ttl_seconds=3600)

    def load_while_a_commit_lands() -> str:
        recent.changed()
        return "read before the commit"

    assert recent.get("image", load_while_a_commit_lands) == "read before the commit"
    assert not recent.knows("image")


def test_without_a_counter_changes_here_still_count(tmp_path: Path) -> None:
    recent = RecentLookups(None, ttl_seconds=3600)
    calls, load = _counting(["old", "new"])
    recent.get("token", load)
    recent.changed()
    assert recent.get("token", load) == "new" and calls == [2]
