"""What every command shares: the consoles, the --repo and --json options, opening the repository, and
who the operator is."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Concatenate, ParamSpec, TypeVar

import typer
from rich.cells import cell_len
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from fairimage.model.errors import InvalidInputError
from fairimage.model.governance.policy import Principal, operator_here
from fairimage.model.study import Generated
from fairimage.services.ingest.conversion import Progress as IngestProgress
from fairimage.services.models import models as model_service
from fairimage.services.recovery import open_repository
from fairimage.services.repository import Repository
from fairimage.settings import load_settings

P = ParamSpec("P")
T = TypeVar("T")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

RepoOption = Annotated[
    Path | None,
    typer.Option("--repo", "-r", envvar="FAIRIMAGE_REPO", show_envvar=True, help="the repository folder"),
]
# Columns of identifiers: what people copy into the next command, so never cut short.
ID_HEADERS = frozenset({"id", "image"})
JsonOption = Annotated[bool, typer.Option("--json", help="print machine-readable JSON")]
GeneratedByOption = Annotated[
    str | None,
    typer.Option(
        "--generated-by",
        help="the files are a model's output (predictions, restorations, synthetic images): the model's PID "
        "or name@version (a model registered here is linked); every image is marked AI-generated, for good",
    ),
]
GeneratedFromOption = Annotated[
    list[str] | None,
    typer.Option("--generated-from", help="with --generated-by: an image the model was run on (repeat it)"),
]


GeneratedWithOption = Annotated[
    list[str] | None,
    typer.Option(
        "--generated-with", help="with --generated-by: a parameter the model ran with, KEY=VALUE (repeat it)"
    ),
]


def generated_mark(
    by: str | None, sources: list[str] | None, parameters: list[str] | None = None
) -> Generated | None:
    """The AI-generated mark --generated-by, --generated-from and --generated-with ask for, if any."""
    if (sources or parameters) and by is None:
        option = "--generated-from" if sources else "--generated-with"
        raise InvalidInputError(f"{option}: say which model made the files with --generated-by MODEL")
    pairs = [text.partition("=") for text in parameters or []]
    bad = [key for key, sep, value in pairs if not sep or not key.strip()]
    if bad:
        raise InvalidInputError(f"--generated-with {bad[0]!r}: give KEY=VALUE, e.g. diameter=30")
    chosen = {key.strip(): value.strip() for key, _, value in pairs}
    return Generated(by=by, from_images=tuple(sources or ()), parameters=chosen) if by else None


def linked_to_model(repository: Repository, generated: Generated | None) -> Generated | None:
    """The mark, with the registered model it names (whose card says how it was trained), if there is one."""
    if generated is None:
        return None
    return generated.model_copy(update={"model": model_service.find_model_id(repository, generated.by)})


def _open(repo: Path | None, **flags: Any) -> Repository:
    return open_repository(load_settings(repo, **flags))


def _json(value: Any) -> None:
    out.print_json(json.dumps(value, default=str), highlight=False)


def operator_principal() -> Principal:
    """The person at this machine's command line, named by their login in the audit log."""
    return operator_here()


@contextmanager
def opened(repo: Path | None, **flags: Any) -> Iterator[Repository]:
    """The repository at ``repo`` for the length of a command."""
    repository = _open(repo, **flags)
    try:
        yield repository
    finally:
        repository.close()


def as_operator(
    repo: Path | None,
    action: Callable[Concatenate[Repository, Principal, P], T],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """``action(repository, operator, *args, **kwargs)`` on the repository at ``repo``, as the person at this
    machine's command line: what most commands do, in one line."""
    with opened(repo) as repository:
        return action(repository, operator_principal(), *args, **kwargs)


def print_listing(table: Table, empty: str = "") -> None:
    """Print a listing, or ``empty`` where it has no rows. Identifiers are never cut, whatever the terminal's
    width: the other columns wrap first, so that an id can be copied."""
    if not table.row_count and empty:
        out.print(empty)
        return
    for column in table.columns:
        if str(column.header) in ID_HEADERS:
            column.no_wrap = True
            column.min_width = max((cell_len(str(cell)) for cell in column.cells), default=0) or None
    out.print(table)


class IngestBar(IngestProgress):
    """Bytes converted and rate, drawn on stderr when it is a terminal."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID | None = None

    def start_file(self, path: Path, total_bytes: int) -> None:
        if self.task is None:
            self.task = self.progress.add_task(path.name, total=total_bytes)
        else:
            task = self.progress.tasks[self.task]
            self.progress.update(self.task, total=(task.total or 0) + total_bytes, description=path.name)

    def advance(self, nbytes: int) -> None:
        if self.task is not None:
            self.progress.advance(self.task, nbytes)


@contextmanager
def progress_bar(as_json: bool, counting: str | None = None) -> Iterator[IngestBar]:
    """A bar of bytes converted (or, with ``counting``, of things counted: "fields", "chunks"), on stderr
    when it is a terminal (never under --json)."""
    amounts = (
        (DownloadColumn(), TransferSpeedColumn())
        if counting is None
        else (MofNCompleteColumn(), TextColumn(counting))
    )
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        *amounts,
        TimeRemainingColumn(),
        console=err,
        disable=as_json or not err.is_terminal,
        transient=True,
    )
    with progress:
        yield IngestBar(progress)
