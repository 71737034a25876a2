"""The web plate page of a 1536-well plate as a user sees it in Chromium: how long until the page is there
and until the plate's overview picture (every well's first field, one PNG drawn by the server) is drawn;
beside it, what the 1536 per-well thumbnails the page used to ask for cost the same server.

A 1536-well x 1-field OME-Zarr 0.5 plate (the writer of benchmarks/register.py, each well its own grey so
the wells differ) is written into a temporary directory under the current one, registered in place by the
CLI (timed) and served by `fairimage serve` (one worker) in its own process. A plate of more than 384 wells
is drawn as one ``<svg class="plate-map">``: an ``<image>`` of ``/api/plates/{id}/overview?size=22`` under
a link per imaged well. Headless Chromium (Debian's, through Playwright; 1600 x 1000 viewport) opens
``/plates/{id}`` three times:

- **cold**: a new browser context against a server process just started (its picture cache empty);
- **browser cache**: the same page reloaded (the overview is ``public, max-age=3600``);
- **server cache**: a new context against the same server, so only the server's picture cache helps.

Each visit reports, in ms from the navigation's start (the page's own clock): the HTML's first and last
byte, DOMContentLoaded, the overview's last byte (resource timing), its ``<image>``'s load event (caught
on the document, capturing) and the second animation frame after it (*drawn*: the frame with the picture
has been produced), and the load event. *Server* is the overview's request sent to its first byte, for a
visit that fetched it over the network (resource timing's ``transferSize`` tells those from the browser's
cache); *bytes* its body.

The old way's cost, measured cheaply: on another fresh server, httpx fetches all 1536
``/api/images/{id}/thumbnail?size=22`` (the ids from ``GET /api/plates/{id}``) 6 at a time, as a browser's
connections to one host, twice (cold, then from the server's cache); and on a third fresh server the
overview alone, twice, by the same client.

The script exits non-zero unless every visit's SVG has ``data-wells="1536"`` and 1536 well links, asks for
the overview once and for no thumbnail, the overview PNG is 32 x 24 by 48 x 24 pixels and not flat, and
every thumbnail is a 200. A full-page screenshot goes to test-artifacts/plate-1536.png (git-ignored);
results to benchmarks/results/plate_page.json.

    python benchmarks/plate_page.py             # about 2.5 minutes, a quarter of it writing the plate
"""

from __future__ import annotations

import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, Page, Request, Response, sync_playwright

sys.path.insert(0, str(Path(__file__).parent))
from register import FORMATS, write_plate  # noqa: E402
from serve import FAIRIMAGE, start_fairimage, stop, wait_for  # noqa: E402

HERE = Path(__file__).parent
RESULTS = HERE / "results"
SCREENSHOT = HERE.parent / "test-artifacts" / "plate-1536.png"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--no-first-run"]
WELLS = 1536
THUMB = 22  # the page's well size for plates of more than 384 wells
CELL = THUMB + 2  # tiles.OVERVIEW_GAP between wells
VIEWPORT = {"width": 1600, "height": 1000}
CONNECTIONS = 6  # Chromium's connections to one host
TIMEOUT_S = 60.0

# Before the page's own scripts: when the plate map's <image> has loaded (or failed), and the second
# animation frame after that (the first frame that can hold the picture has been produced by then). The
# listeners capture on <html>: Chromium fires an SVG element's load event only when it or an ancestor
# *element* listens for it, so a listener on the document alone never hears it.
WATCH_OVERVIEW = """
window.__overview = {};
const noteOverview = (event) => {
  if (!(event.target instanceof SVGImageElement) || !event.target.closest("svg.plate-map")) return;
  window.__overview[event.type] = performance.now();
  requestAnimationFrame(() => requestAnimationFrame(() => { window.__overview.drawn = performance.now(); }));
};
const listenOnRoot = () => {
  if (!document.documentElement) return false;
  for (const kind of ["load", "error"]) document.documentElement.addEventListener(kind, noteOverview, true);
  return true;
};
if (!listenOnRoot()) {
  new MutationObserver((_, observer) => listenOnRoot() && observer.disconnect()).observe(document, {
    childList: true,
  });
}
"""

# What the page's own clock says, and what the page holds, once the picture is drawn.
PAGE_STATE = """() => {
  const entries = (part) => performance.getEntriesByType("resource").filter((e) => e.name.includes(part));
  const map = document.querySelector("svg.plate-map");
  return {
    navigation: performance.getEntriesByType("navigation")[0].toJSON(),
    overview: entries("/overview").map((e) => e.toJSON()),
    thumbnails: entries("/thumbnail").length,
    marks: window.__overview,
    wells_attribute: map && map.getAttribute("data-wells"),
    links: map ? map.querySelectorAll("a").length : 0,
    images: map ? map.querySelectorAll("image").length : 0,
    image_box: map && map.querySelector("image") ? map.querySelector("image").getBBox().width : 0,
    thumbnail_imgs: document.querySelectorAll("img[src*='/thumbnail']").length,
  };
}"""


@dataclass
class Visit:
    name: str
    navigation_type: str
    html_first_byte_ms: float
    html_last_byte_ms: float
    dom_content_loaded_ms: float
    overview_start_ms: float  # the page asking for the overview
    overview_last_byte_ms: float
    overview_loaded_ms: float  # the <image>'s load event
    overview_drawn_ms: float  # the second animation frame after it
    load_ms: float
    overview_server_ms: float | None  # request sent to first byte; None when the browser's cache gave it
    overview_source: str  # network (status), or browser cache
    overview_bytes: int  # the body
    overview_transfer_bytes: int  # over the network, headers included; 0 from the browser's cache
    overview_requests: int  # seen by Playwright
    overview_entries: int  # resource timing entries
    thumbnail_requests: int
    thumbnail_entries: int
    wells_attribute: str | None
    links: int
    svg_images: int
    thumbnail_imgs: int
    failed: list[str]


@dataclass
class Fetches:
    """One pass of an httpx client over some picture URLs, ``CONNECTIONS`` at a time."""

    name: str
    requests: int
    seconds: float
    bytes: int
    statuses: dict[int, int]
    latency_ms: list[float]

    def summary(self) -> dict[str, Any]:
        figures = asdict(self)
        figures["latency_ms"] = _percentiles(self.latency_ms)
        return figures


def _percentiles(values: list[float]) -> str:
    if not values:
        return "-"
    p95 = statistics.quantiles(values, n=20, method="inclusive")[-1] if len(values) > 1 else values[0]
    return f"{statistics.median(values):.0f} / {p95:.0f} / {max(values):.0f}"


def watch(page: Page) -> tuple[list[Request], list[Request], list[Response], list[str]]:
    """The overview and thumbnail requests the page makes from now on, the overview's responses and the
    requests that failed."""
    overviews: list[Request] = []
    thumbnails: list[Request] = []
    responses: list[Response] = []
    failed: list[str] = []

    def on_request(request: Request) -> None:
        if "/overview" in request.url:
            overviews.append(request)
        elif "/thumbnail" in request.url:
            thumbnails.append(request)

    def on_response(response: Response) -> None:
        if "/overview" in response.url:
            responses.append(response)

    def on_failed(request: Request) -> None:
        failed.append(f"{request.url}: {request.failure}")

    page.on("request", on_request)
    page.on("response", on_response)
    page.on("requestfailed", on_failed)
    return overviews, thumbnails, responses, failed


def visit(page: Page, url: str | None, name: str) -> tuple[Visit, bytes | None]:
    """One page load as a user makes it (``url``; None reloads the page), timed by the page's clock; the
    overview PNG's bytes when it came over the network with a body."""
    overviews, thumbnails, responses, failed = watch(page)
    if url is None:
        page.reload(wait_until="commit")
    else:
        page.goto(url, wait_until="commit")
    page.wait_for_function(
        "() => window.__overview && (window.__overview.drawn || window.__overview.error)",
        timeout=TIMEOUT_S * 1000,
    )
    page.wait_for_load_state("load")
    page.wait_for_load_state("networkidle")  # anything else the page would ask for, asked
    state: dict[str, Any] = page.evaluate(PAGE_STATE)
    navigation, marks = state["navigation"], state["marks"]
    if "error" in marks:
        failed.append(f"the overview <image> fired an error event at {marks['error']:.0f} ms")
    entry = state["overview"][-1] if state["overview"] else {}
    over_network = entry.get("transferSize", 0) > 0
    status = responses[-1].status if responses else None
    body = responses[-1].body() if responses and status == 200 else None
    return Visit(
        name=name,
        navigation_type=navigation["type"],
        html_first_byte_ms=round(navigation["responseStart"], 1),
        html_last_byte_ms=round(navigation["responseEnd"], 1),
        dom_content_loaded_ms=round(navigation["domContentLoadedEventEnd"], 1),
        overview_start_ms=round(entry.get("startTime", -1), 1),
        overview_last_byte_ms=round(entry.get("responseEnd", -1), 1),
        overview_loaded_ms=round(marks.get("load", -1), 1),
        overview_drawn_ms=round(marks.get("drawn", -1), 1),
        load_ms=round(navigation["loadEventEnd"], 1),
        overview_server_ms=round(entry["responseStart"] - entry["requestStart"], 1) if over_network else None,
        overview_source=f"network ({status})" if over_network else "browser cache",
        overview_bytes=entry.get("decodedBodySize", 0),
        overview_transfer_bytes=entry.get("transferSize", 0),
        overview_requests=len(overviews),
        overview_entries=len(state["overview"]),
        thumbnail_requests=len(thumbnails),
        thumbnail_entries=state["thumbnails"],
        wells_attribute=state["wells_attribute"],
        links=state["links"],
        svg_images=state["images"],
        thumbnail_imgs=state["thumbnail_imgs"],
        failed=failed,
    ), body


def _context(browser: Browser) -> BrowserContext:
    """A fresh browser profile (its own cache) whose pages note when the overview is drawn."""
    context = browser.new_context(viewport=VIEWPORT)
    context.add_init_script(WATCH_OVERVIEW)
    return context


def measure_page(base: str, plate_id: str) -> tuple[list[Visit], bytes | None, float]:
    """The three visits (the first against a server that has rendered nothing), the overview PNG of the
    cold visit and the seconds the full-page screenshot took."""
    url = f"{base}/plates/{plate_id}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        first = _context(browser)
        page = first.new_page()
        cold, png = visit(page, url, "cold")
        browser_cache, _ = visit(page, None, "browser cache")
        page.close()
        second = _context(browser)
        page = second.new_page()
        server_cache, _ = visit(page, url, "server cache")
        SCREENSHOT.parent.mkdir(exist_ok=True)
        started = time.perf_counter()
        page.screenshot(path=str(SCREENSHOT), full_page=True)
        screenshot_s = time.perf_counter() - started
        browser.close()
    return [cold, browser_cache, server_cache], png, screenshot_s


def fetch_all(client: httpx.Client, paths: list[str], name: str) -> Fetches:
    """GET every path, ``CONNECTIONS`` at a time (the client's pool is that big)."""

    def get(path: str) -> tuple[int, int, float]:
        started = time.perf_counter()
        response = client.get(path)
        return response.status_code, len(response.content), (time.perf_counter() - started) * 1000

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=CONNECTIONS) as pool:
        results = list(pool.map(get, paths))
    seconds = time.perf_counter() - started
    statuses: dict[int, int] = {}
    for status, _, _ in results:
        statuses[status] = statuses.get(status, 0) + 1
    return Fetches(
        name=name,
        requests=len(paths),
        seconds=round(seconds, 3),
        bytes=sum(size for _, size, _ in results),
        statuses=statuses,
        latency_ms=[round(ms, 1) for _, _, ms in results],
    )


def _client(base: str) -> httpx.Client:
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    return httpx.Client(base_url=base, limits=limits, timeout=TIMEOUT_S)


def with_server(repo: Path, work: Any) -> Any:
    """``work(base)`` against a fresh `fairimage serve` process (one worker), stopped after."""
    server, base = start_fairimage(repo, workers=1)
    try:
        wait_for(base, "/api/studies")
        return work(base)
    finally:
        stop(server)


def measure_thumbnails(base: str, plate_id: str) -> tuple[list[Fetches], int]:
    """The 1536 thumbnails the page used to ask for, cold and from the server's cache; the plate's imaged
    wells (from its JSON)."""
    with _client(base) as client:
        plate = client.get(f"/api/plates/{plate_id}").raise_for_status().json()
        first_fields = [well["images"][0] for well in plate["wells"] if well["images"]]
        paths = [f"/api/images/{image_id}/thumbnail?size={THUMB}" for image_id in first_fields]
        passes = [fetch_all(client, paths, "cold"), fetch_all(client, paths, "server cache")]
    return passes, len(first_fields)


def measure_overview(base: str, plate_id: str) -> list[Fetches]:
    """The overview alone by the same client, cold and from the server's cache."""
    path = f"/api/plates/{plate_id}/overview?size={THUMB}"
    with _client(base) as client:
        return [fetch_all(client, [path], "cold"), fetch_all(client, [path], "server cache")]


def build_plate(work: Path) -> tuple[Path, str, float]:
    """The registered repository, the plate's id and the seconds `fairimage register` took."""
    plate, repo = work / "plate.ome.zarr", work / "repo"
    started = time.perf_counter()
    files = write_plate(plate, WELLS, 1, shaded=True)
    print(
        f"wrote a {WELLS}-well plate of {files:,} files in {time.perf_counter() - started:.1f} s", flush=True
    )
    subprocess.run([FAIRIMAGE, "init", str(repo)], check=True, capture_output=True)
    started = time.perf_counter()
    done = subprocess.run(
        [FAIRIMAGE, "register", str(plate), "--repo", str(repo), "--json"], capture_output=True, text=True
    )
    register_s = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"fairimage register failed:\n{done.stderr[-2000:]}")
    (outcome,) = json.loads(done.stdout)
    summary = {key: value for key, value in outcome.items() if key != "images"}
    print(f"fairimage register: {register_s:.1f} s, {json.dumps(summary)}", flush=True)
    return repo, outcome["plate_id"], register_s


def check_png(png: bytes | None) -> tuple[list[str], dict[str, Any]]:
    """What is wrong with the overview PNG, and what it is."""
    if png is None:
        return ["the cold visit got no overview PNG over the network"], {}
    picture = np.asarray(Image.open(io.BytesIO(png)).convert("L")).astype(np.float64)
    rows, columns = FORMATS[WELLS]
    centres = picture[CELL // 2 :: CELL, CELL // 2 :: CELL]  # one pixel inside each well
    facts = {
        "shape": list(picture.shape),
        "std": round(float(picture.std()), 2),
        "distinct_well_values": int(np.unique(centres).size),
    }
    problems = []
    if picture.shape != (rows * CELL, columns * CELL):
        problems.append(f"the overview is {picture.shape}, not {(rows * CELL, columns * CELL)} pixels")
    if facts["std"] < 5 or facts["distinct_well_values"] < 10:
        problems.append(f"the overview looks flat: {facts}")
    return problems, facts


def check_visits(visits: list[Visit]) -> list[str]:
    problems = []
    for v in visits:
        wrong = []
        if v.wells_attribute != str(WELLS):
            wrong.append(f'data-wells="{v.wells_attribute}"')
        if v.links != WELLS or v.svg_images != 1 or v.thumbnail_imgs:
            wrong.append(f"{v.links} well links, {v.svg_images} <image>, {v.thumbnail_imgs} thumbnail <img>")
        # A reload may take the picture from the browser's memory cache without a request event; its
        # resource timing entry is there either way.
        requests_ok = v.overview_requests == 1 or (v.name == "browser cache" and v.overview_requests == 0)
        if v.overview_entries != 1 or not requests_ok:
            wrong.append(f"{v.overview_requests} overview requests ({v.overview_entries} timing entries)")
        if v.thumbnail_requests or v.thumbnail_entries:
            wrong.append(f"{v.thumbnail_requests} thumbnail requests ({v.thumbnail_entries} timing entries)")
        if min(v.overview_loaded_ms, v.overview_drawn_ms) < 0 or v.failed:
            wrong.append(f"the overview was not drawn: {v.failed[:3]}")
        if wrong:
            problems.append(f"{v.name}: " + "; ".join(wrong))
    return problems


def print_table(
    visits: list[Visit],
    thumbnails: list[Fetches],
    overview: list[Fetches],
    facts: dict[str, Any],
    register_s: float,
) -> None:
    cores = len(os.sched_getaffinity(0))
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(
        f"\nplate page on {platform.node()} ({platform.processor() or platform.machine()}, {cores} cores, "
        f"load average {load}): {WELLS} wells ({' x '.join(map(str, FORMATS[WELLS]))}), "
        f"registered in {register_s:.1f} s"
    )
    print(
        f"{'visit':<14} {'HTML ms':>9} {'DOM ms':>7} {'overview asked-last byte':>25} {'loaded':>7}"
        f" {'drawn':>6} {'load ms':>8} {'server ms':>9} {'bytes':>8}  source"
    )
    for v in visits:
        html = f"{v.html_first_byte_ms:.0f}-{v.html_last_byte_ms:.0f}"
        asked = f"{v.overview_start_ms:.0f}-{v.overview_last_byte_ms:.0f}"
        server = "-" if v.overview_server_ms is None else f"{v.overview_server_ms:.0f}"
        print(
            f"{v.name:<14} {html:>9} {v.dom_content_loaded_ms:>7.0f} {asked:>25} {v.overview_loaded_ms:>7.0f}"
            f" {v.overview_drawn_ms:>6.0f} {v.load_ms:>8.0f} {server:>9} {v.overview_bytes:>8,}"
            f"  {v.overview_source} ({v.overview_requests} request, {v.thumbnail_requests} thumbnails)"
        )
    print(
        "ms from the navigation's start; loaded: the overview <image>'s load event; drawn: the second"
        " animation frame after it; server: the overview's request sent to first byte; overview PNG"
        f" {facts.get('shape')} px, std {facts.get('std')}"
    )
    print(f"\nhttpx, {CONNECTIONS} connections, each pass against the server as the previous one left it:")
    print(f"{'what':<40} {'requests':>8} {'seconds':>8} {'bytes':>10} {'each ms p50/p95/max':>20}")
    for label, passes in (("one overview", overview), (f"{WELLS} thumbnails ?size={THUMB}", thumbnails)):
        for fetches in passes:
            print(
                f"{label + ', ' + fetches.name:<40} {fetches.requests:>8} {fetches.seconds:>8.2f}"
                f" {fetches.bytes:>10,} {_percentiles(fetches.latency_ms):>20}"
            )


def main() -> None:
    with tempfile.TemporaryDirectory(dir=Path.cwd(), prefix="fairimage-plate-page-") as work:
        repo, plate_id, register_s = build_plate(Path(work))
        visits, png, screenshot_s = with_server(repo, lambda base: measure_page(base, plate_id))
        overview = with_server(repo, lambda base: measure_overview(base, plate_id))
        thumbnails, imaged = with_server(repo, lambda base: measure_thumbnails(base, plate_id))
    png_problems, facts = check_png(png)
    print_table(visits, thumbnails, overview, facts, register_s)
    print(f"full-page screenshot ({screenshot_s:.1f} s): {SCREENSHOT}")
    RESULTS.mkdir(exist_ok=True)
    report = {
        "machine": {"node": platform.node(), "cpus": os.cpu_count(), "load": os.getloadavg()},
        "wells": WELLS,
        "register_s": round(register_s, 2),
        "overview_png": facts,
        "visits": [asdict(v) for v in visits],
        "httpx_overview": [f.summary() for f in overview],
        "httpx_thumbnails": [f.summary() for f in thumbnails],
    }
    (RESULTS / "plate_page.json").write_text(json.dumps(report, indent=1))
    problems = png_problems + check_visits(visits)
    if imaged != WELLS:
        problems.append(f"the plate's JSON has {imaged} imaged wells, not {WELLS}")
    for fetches in thumbnails + overview:
        if set(fetches.statuses) != {200}:
            problems.append(f"httpx {fetches.name}: {fetches.statuses}")
    if problems:
        raise SystemExit("\n".join(problems))


if __name__ == "__main__":
    main()
