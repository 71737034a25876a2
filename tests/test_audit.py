"""The audit log is tamper-evident: editing, deleting, inserting or reordering entries directly in the
database (SQLite and PostgreSQL) is found by 'audit verify', which names the first bad entry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from fairimage.model.governance.policy import Role, operator
from fairimage.services.governance import accounts, audit
from fairimage.services.recovery import open_repository
from fairimage.services.repository import Repository, init_repository
from fairimage.settings import load_settings
from tests.conftest import run_cli


@pytest.fixture
def logged(tmp_path: Path, catalog_url: str) -> Iterator[Repository]:
    """A repository whose audit log holds 6 entries (one per user added)."""
    repository = init_repository(load_settings(tmp_path / "repo", db=catalog_url))
    for index in range(6):
        accounts.add_user(repository, operator("test"), f"user{index}", Role.VIEWER)
    yield repository
    repository.close()


def _sql(repository: Repository, statement: str, **values: object) -> None:
    with repository.engine.begin() as connection:
        connection.execute(text(statement), values)


def _row(repository: Repository, seq: int) -> dict[str, object]:
    with repository.engine.connect() as connection:
        return dict(
            connection.execute(text("select * from audit_log where seq = :s"), {"s": seq}).mappings().one()
        )


def test_an_untouched_log_verifies(logged: Repository) -> None:
    result = audit.verify(logged)
    assert result.ok and result.entries == 6 and result.head_seq == 6
    assert [entry.action for entry in audit.entries(logged)] == ["user.add"] * 6


def test_an_edited_entry_is_named(logged: Repository) -> None:
    _sql(logged, "update audit_log set actor = 'mallory' where seq = 3")
    assert audit.verify(logged).problem == "entry 3 was changed after it was written"


def test_a_deleted_entry_is_named(logged: Repository) -> None:
    _sql(logged, "delete from audit_log where seq = 4")
    assert audit.verify(logged).problem == "entry 4 is missing (the log jumps from 3 to 5)"


def test_a_deleted_last_entry_is_found_by_the_head(logged: Repository) -> None:
    _sql(logged, "delete from audit_log where seq = 6")
    problem = audit.verify(logged).problem
    assert problem is not None and problem.startswith("the log ends at entry 5 but its head records entry 6")


def test_an_inserted_entry_is_found_where_the_chain_breaks(logged: Repository) -> None:
    """A forger shifts entries 3.. up by one and writes a well-formed entry 3 that follows entry 2; the old
    entry 3, now 4, no longer follows it."""
    for seq in range(6, 2, -1):
        _sql(logged, "update audit_log set seq = :new where seq = :old", new=seq + 1, old=seq)
    second = _row(logged, 2)
    forged = {**second, "seq": 3, "actor": "mallory", "prev_hash": second["entry_hash"]}
    forged["entry_hash"] = audit.entry_hash(forged)
    columns = ", ".join(forged)
    _sql(logged, f"insert into audit_log ({columns}) values ({', '.join(':' + c for c in forged)})", **forged)
    problem = audit.verify(logged).problem
    assert problem is not None and problem.startswith("entry 4 does not follow entry 3")


def test_reordered_entries_are_found(logged: Repository) -> None:
    two, three = _row(logged, 2), _row(logged, 3)
    for target, source in ((2, three), (3, two)):
        fields = {k: v for k, v in source.items() if k != "seq"}
        assignments = ", ".join(f"{k} = :{k}" for k in fields)
        _sql(logged, f"update audit_log set {assignments} where seq = :position", position=target, **fields)
    problem = audit.verify(logged).problem
    assert problem is not None and problem.startswith("entry 2 does not follow entry 1")


def test_a_rewritten_chain_is_caught_by_an_anchor_kept_earlier(logged: Repository) -> None:
    anchor = f"{audit.verify(logged).head_seq}:{audit.verify(logged).head_hash}"
    # The forger edits entry 2 and recomputes every hash after it, and the head: the chain is consistent...
    _sql(logged, "update audit_log set actor = 'mallory' where seq = 2")
    previous = _row(logged, 1)["entry_hash"]
    for seq in range(2, 7):
        row = {**_row(logged, seq), "prev_hash": previous}
        row["entry_hash"] = audit.entry_hash(row)
        _sql(
            logged,
            "update audit_log set prev_hash = :p, entry_hash = :h where seq = :s",
            p=row["prev_hash"],
            h=row["entry_hash"],
            s=seq,
        )
        previous = row["entry_hash"]
    _sql(logged, "update audit_head set entry_hash = :h where id = 1", h=previous)
    assert audit.verify(logged).ok
    # ...but not with the head an admin kept before.
    result = audit.verify(logged, anchor=anchor)
    assert result.problem == "entry 6 differs from the anchor kept earlier: the chain was rewritten"


def test_cli_verify_says_intact_or_tampered_with_its_exit_code(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    run_cli("init", repo, check=True)
    run_cli("user", "add", "ada", "--role", "steward", "--repo", repo, check=True)
    intact = run_cli("audit", "verify", "--repo", repo)
    assert intact.returncode == 0 and intact.stdout.startswith("audit log intact: 1 entries, head 1:")
    head = run_cli("audit", "head", "--repo", repo, check=True).stdout.strip()
    repository = open_repository(load_settings(repo))
    _sql(repository, "update audit_log set target = 'user:eve' where seq = 1")
    repository.close()
    tampered = run_cli("audit", "verify", "--repo", repo, "--anchor", head)
    assert tampered.returncode == 6
    assert tampered.stderr.strip() == "audit log TAMPERED: entry 1 was changed after it was written"
