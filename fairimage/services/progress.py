"""How long work reports how far it is: the CLI draws a bar from it, a background job writes it down."""

from __future__ import annotations

from pathlib import Path


class Progress:
    """Receives progress, and by default ignores it: a total per file (or plate, or image), then advances
    in the same unit (pixel bytes for ingest, fields for QC and registration, chunks for verification)."""

    def start_file(self, path: Path, total_bytes: int) -> None: ...

    def advance(self, nbytes: int) -> None: ...
