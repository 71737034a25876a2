"""The package as a user installs it, not as a checkout runs it.

A wheel built from the tracked files (sdist first, the wheel from the sdist, as a release is built) must
carry the web viewer's bundle: installed in a new virtual environment, its server answers for
/static/build/viewer.js and its image pages draw in Chromium. A package without the bundle (installed
where npm was missing) must say so when `fairimage serve` starts and on each image page, which then shows
the server's picture instead of a viewer whose script is not there."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from fairimage.services.ingest.intake import ingest_paths
from fairimage.services.repository import init_repository
from fairimage.settings import load_settings
from tests import samples
from tests.conftest import _free_port
from tests.test_browser import ARGS, ARTIFACTS, CHROMIUM, _viewer_pixels

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "fairimage"
HTML = {"Accept": "text/html,application/xhtml+xml"}

playwright_api = pytest.importorskip("playwright.sync_api")


def _environment() -> dict[str, str]:
    """The caller's environment without FAIRIMAGE_* (a user's own settings must not leak into a test)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("FAIRIMAGE_")}


@dataclass
class Server:
    url: str
    startup: list[str]  # what `fairimage serve` printed before it listened
    process: subprocess.Popen[str]


@dataclass
class Served:
    server: Server
    package: Path  # the fairimage package it runs
    image: str


def _serve(command: list[str], cwd: Path) -> Server:
    """Start `fairimage serve ...` on a free 127.0.0.1 port; return once it answers, with its first lines."""
    port = _free_port()
    process = subprocess.Popen(
        [*command, "--port", str(port)],
        cwd=cwd,
        env=_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    startup = _lines_until(process.stderr, "Serving ")
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url + "/api/studies", timeout=2)
            return Server(url, startup, process)
        except httpx.HTTPError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError(f"fairimage serve did not start: {startup}") from None
            time.sleep(0.2)


def _lines_until(stream: IO[str] | None, prefix: str) -> list[str]:
    assert stream is not None
    lines: list[str] = []
    for line in stream:
        lines.append(line.rstrip("\n"))
        if line.startswith(prefix):
            break
    return lines


def _stop(server: Server) -> None:
    server.process.terminate()
    server.process.wait(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (make test installs it as root)")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield browser
        browser.close()


def _without_bundle(folder: str, names: list[str]) -> set[str]:
    """What a wheel built without npm lacks (the bundle), and what no wheel has (npm sources, bytecode)."""
    skipped = {"frontend", "__pycache__"} & set(names)
    if Path(folder) == PACKAGE / "web" / "static":
        skipped |= {"build"} & set(names)
    return skipped


@pytest.fixture(scope="module")
def unbuilt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`fairimage serve` from a copy of the package without the viewer bundle; the checkout's bundle stays."""
    root = tmp_path_factory.mktemp("unbuilt")
    shutil.copytree(PACKAGE, root / "fairimage", ignore=_without_bundle)
    png = samples.png(root / "plane.png", samples.ramp((300, 400), dtype="uint8"))
    settings = load_settings(root / "repo")
    repository = init_repository(settings)
    (outcome,) = ingest_paths(repository, [png], study="unbuilt")
    repository.close()
    # Run from the copy's folder: Python imports the fairimage found there before the installed one.
    main = "import sys; from fairimage.cli import main; sys.argv[0] = 'fairimage'; main()"
    server = _serve([sys.executable, "-c", main, "serve", "--repo", str(settings.repo)], cwd=root)
    yield Served(server, root / "fairimage", outcome.images[0])
    _stop(server)


def test_serve_says_at_start_that_the_viewer_is_not_built(unbuilt: Served) -> None:
    (warning,) = [line for line in unbuilt.server.startup if line.startswith("warning:")]
    assert "the web viewer is not built" in warning
    assert f"{unbuilt.package}/web/static/build/viewer.js" in warning and "deepzoom.js" in warning
    assert "make web" in warning and "npm" in warning


def test_an_image_page_without_the_bundle_says_so_and_shows_the_servers_picture(
    unbuilt: Served, browser: Any
) -> None:
    url = unbuilt.server.url
    html = httpx.get(f"{url}/images/{unbuilt.image}", headers=HTML).text
    assert "/static/build/" not in html.replace("<code>/static/build/", ""), "a script that would 404"
    assert httpx.get(f"{url}/static/build/viewer.js").status_code == 404

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    try:
        page.goto(f"{url}/images/{unbuilt.image}")
        page.wait_for_load_state("networkidle")
        message = page.locator("#viewer-missing")
        assert message.is_visible()
        assert "web viewer is not installed" in message.inner_text()
        assert "/static/build/viewer.js" in message.inner_text() and "make web" in message.inner_text()
        picture = page.locator("#viewer img")
        assert picture.evaluate("img => img.complete && img.naturalWidth") > 0
        assert not any("/static/build/" in request for request in requests)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "viewer-not-built.png"))
    finally:
        page.close()


# --- the wheel, built and installed as a user would ------------------------------------------------------


def _tracked_copy(target: Path) -> Path:
    """The checkout's tracked files as they are in the working tree (uncommitted edits included): what a
    clean clone would hold, so nothing built or installed in the checkout can make the test pass."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the tracked files are unknown")
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():  # deleted in the working tree but not yet in git: gone from the copy too
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def _run(command: list[str | Path], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, env=_environment(), **kwargs
    )
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


@pytest.mark.slow
def test_a_wheel_built_from_the_tracked_files_serves_a_working_viewer(tmp_path: Path, browser: Any) -> None:
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.skip("npm and node are needed to bundle the viewer into the wheel")
    timings: dict[str, float] = {}
    started = time.monotonic()
    source = _tracked_copy(tmp_path / "source")
    dist = tmp_path / "dist"
    # python -m build makes the sdist, then the wheel from the unpacked sdist: so the sdist must hold
    # everything the viewer's build needs.
    _run([sys.executable, "-m", "build", "--outdir", dist, source])
    timings["sdist + wheel"] = time.monotonic() - started

    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        in_sdist = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    frontend = "fairimage/web/frontend/"
    for name in ("package.json", "package-lock.json", "build.mjs", "src/viewer.js", "src/deepzoom.js"):
        assert frontend + name in in_sdist
    assert "build_viewer.py" in in_sdist
    assert not [name for name in in_sdist if "node_modules" in name or "/static/build" in name]
    (wheel,) = dist.glob("*.whl")
    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    assert {"fairimage/web/static/build/viewer.js", "fairimage/web/static/build/deepzoom.js"} <= in_wheel
    assert not [name for name in in_wheel if name.startswith(frontend)]

    mark = time.monotonic()
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv])
    _run([venv / "bin" / "pip", "install", "-q", "--disable-pip-version-check", wheel])
    timings["venv + install"] = time.monotonic() - mark

    fairimage = venv / "bin" / "fairimage"
    repo = tmp_path / "repo"
    _run([fairimage, "init", repo])
    plane = samples.png(tmp_path / "plane.png", samples.ramp((300, 400), dtype="uint16"))
    _run([fairimage, "ingest", plane, "--repo", repo, "--study", "installed"])
    server = _serve([str(fairimage), "serve", "--repo", str(repo)], cwd=tmp_path)
    try:
        assert not [line for line in server.startup if line.startswith("warning:")], server.startup
        assert httpx.get(f"{server.url}/static/build/viewer.js").status_code == 200
        (image,) = httpx.get(f"{server.url}/api/images").json()["items"]
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        try:
            page.goto(f"{server.url}/images/{image['id']}?viewer=viv")
            page.wait_for_selector('#viewer[data-viewer="viv"][data-tiles-loaded]', timeout=30_000)
            assert page.locator("#viewer canvas").first.is_visible()
            assert page.locator("#viewer-missing").count() == 0
            page.wait_for_timeout(500)
            assert _viewer_pixels(page, "installed-wheel-viv").std() > 10, "the viewer canvas is blank"
        finally:
            page.close()
    finally:
        _stop(server)
    timings["total"] = time.monotonic() - started
    print("package test timings: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()))
