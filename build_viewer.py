"""The setuptools build hook that puts the web viewer's bundle into the wheel.

The bundle (fairimage/web/static/build/) is git-ignored: esbuild makes it from the npm sources in
fairimage/web/frontend, pinned by package-lock.json. pyproject.toml names ``BuildPyWithViewer`` as the
``build_py`` command ([tool.setuptools.cmdclass]), so ``pip install .``, ``python -m build`` and a wheel
built from the sdist run the same two steps as ``make web`` (``npm ci``, then ``node build.mjs``) when the
bundle is missing or older than its sources, before package-data copies it into the wheel.

Without npm or node the build still succeeds, with a warning in the build log: the server then says at
start and on each image page that the viewer is not built. A failing npm build fails the wheel, so that
a machine with npm never makes a viewer-less wheel by accident. Editable installs (``make install``) skip
the hook: they serve the checkout, where ``make web`` builds the bundle and rebuilds it as sources change.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from setuptools.command.build_py import build_py
from setuptools.errors import ExecError

ROOT = Path(__file__).resolve().parent
FRONTEND = ROOT / "fairimage" / "web" / "frontend"
# The files fairimage.web.VIEWER_BUNDLE looks for at run time (the package itself cannot be imported here: its
# dependencies are not in the build environment).
BUNDLE = [
    ROOT / "fairimage" / "web" / "static" / "build" / name
    for name in ("viewer.js", "deepzoom.js", "neuroglancer/neuroglancer.js")
]


class BuildPyWithViewer(build_py):
    """``build_py`` that first builds the viewer bundle, so that package-data finds it."""

    def run(self) -> None:
        if not self.editable_mode and _bundle_outdated():
            self._build_bundle()
            # build_py lists its package data once, lazily; list it again now that the bundle exists.
            self.__dict__.pop("data_files", None)
        super().run()

    def _build_bundle(self) -> None:
        missing = [tool for tool in ("npm", "node") if shutil.which(tool) is None]
        if missing:
            self.warn(
                f"{' and '.join(missing)} not found: the web viewer is NOT bundled in this build "
                f"({BUNDLE[0].relative_to(ROOT)} missing); image pages will say so. Install Node.js "
                "with npm and build again for a package whose viewer works."
            )
            return
        where = FRONTEND.relative_to(ROOT)
        self.announce(f"building the web viewer bundle in {where}: npm ci, node build.mjs", level=2)
        for command in (["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], ["node", "build.mjs"]):
            try:
                subprocess.run(command, cwd=FRONTEND, check=True)
            except subprocess.CalledProcessError as exc:
                raise ExecError(
                    f"'{' '.join(command)}' in {FRONTEND} failed (exit {exc.returncode}); "
                    "its output above says why"
                ) from exc


def _bundle_outdated() -> bool:
    """True if a bundle file is missing or older than a source it is built from (the Makefile's rule)."""
    if not all(path.is_file() for path in BUNDLE):
        return True
    sources = [FRONTEND / "package-lock.json", FRONTEND / "build.mjs", *FRONTEND.glob("src/*.js")]
    built = min(path.stat().st_mtime for path in BUNDLE)
    return any(source.stat().st_mtime > built for source in sources if source.is_file())
