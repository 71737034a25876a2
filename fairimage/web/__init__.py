"""Templates and static files of the web pages, and whether the viewer bundle is among them."""

from __future__ import annotations

from pathlib import Path

WEB = Path(__file__).parent
TEMPLATES = WEB / "templates"
STATIC = WEB / "static"
# The scripts of the two viewers, built from frontend/ by 'make web' or by a wheel's build (build_viewer.py).
VIEWER_BUNDLE = ("build/viewer.js", "build/deepzoom.js", "build/neuroglancer/neuroglancer.js")


def missing_viewer_files(static: Path = STATIC) -> list[str]:
    """The viewer bundle's files that ``static`` lacks, as paths under /static/; empty once it is built."""
    return [name for name in VIEWER_BUNDLE if not (static / name).is_file()]


def viewer_not_built(missing: list[str], static: Path = STATIC) -> str:
    """What the operator reads when the bundle is missing: which files, and how to build them."""
    files = ", ".join(str(static / name) for name in missing)
    return (
        f"the web viewer is not built ({files} missing): run 'make web' in a checkout, or install a wheel "
        "built where npm is available; until then image pages show a picture rendered by the server"
    )
