"""Federated search between real nodes: three `fairimage serve` processes on 127.0.0.1, each with its own
SQLite repository of N generated image records over N/100 studies (benchmarks/search.py's generator, a
different seed per node, so the nodes hold different studies over the same vocabulary). Node 1 adds the
others as peers (`fairimage peer add`) and harvests them (`fairimage harvest`, timed), then a client times
`GET /api/search` at node 1 with the same random queries in every mode:
- local: ``scope=local``, node 1's own index;
- federated: ``scope=federated``, node 1's index and the records harvested from nodes 2 and 3;
- live: ``scope=federated&live=true``, the peers asked too, all three nodes up;
- live, node 3 down: node 3 terminated (connection refused);
- live, node 3 silent: a socket on node 3's port that accepts connections and never answers (the timeout
  path; fewer queries, each waits for the peer timeout).
Queries as in benchmarks/search.py: two words (text), one facet value (facet), a word and a facet value
(text+facet). Every answer's peer statuses are checked (both live; node 3 down or timeout), and the totals
of the live answers are compared with the harvested ones for the same query.

Target (issue): p95 <= 150 ms for federated live search with every node up; with node 3 down or silent,
no answer later than the peer timeout plus a small margin.

    python benchmarks/federation.py                           # 100,000 images per node
    python benchmarks/federation.py --images-per-node 10000   # a few minutes
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import search as generator  # noqa: E402  (benchmarks/search.py)

from fairimage.catalog.tables import StudyRow  # noqa: E402
from fairimage.services.governance import audit  # noqa: E402

RESULTS = HERE / "results"
FAIRIMAGE = str(Path(sys.executable).with_name("fairimage"))
TARGET_P95_MS = 150.0
CASES = ("text", "facet", "text+facet")
Query = dict[str, str]


@dataclass
class Node:
    name: str
    repo: Path
    port: int = 0
    server: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [FAIRIMAGE, *args, "--repo", str(self.repo)]
        result = subprocess.run(command, capture_output=True, text=True, env=_clean_env())
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip()}")
        return result

    def serve(self) -> None:
        self.port = self.port or _free_port()
        log = (self.repo.parent / f"{self.name}-serve.log").open("ab")
        command = [FAIRIMAGE, "serve", "--repo", str(self.repo), "--port", str(self.port)]
        self.server = subprocess.Popen(command, stdout=log, stderr=log, env=_clean_env())
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(self.url + "/.well-known/fairimage-node", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start; see {log.name}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.server is not None:
            self.server.terminate()
            self.server.wait(timeout=30)
            self.server = None


class Silent:
    """A socket on a port that accepts connections and never answers (nor closes them)."""

    def __init__(self, port: int) -> None:
        self.socket = socket.socket()
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", port))
        self.socket.listen(256)
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.held.append(connection)

    def close(self) -> None:
        self.socket.close()
        for connection in self.held:
            connection.close()


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("FAIRIMAGE_")}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """benchmarks/search.py's ``populate`` draws from ``random.Random(7)``; each node gets its own seed."""
    real = generator.random
    shim = types.SimpleNamespace(Random=lambda _ignored: real.Random(seed))
    generator.random = shim  # type: ignore[assignment]
    try:
        yield
    finally:
        generator.random = real


def _journal(repository: Any) -> int:
    """A ``study.create`` audit entry per generated study, as ingest writes: the change feed reads them."""
    with repository.transaction() as session:
        ids = list(session.scalars(select(StudyRow.id).order_by(StudyRow.id)))
        for study_id in ids:
            audit.record(session, "bench", "study.create", f"study:{study_id}", name=study_id)
    return len(ids)


def make_node(root: Path, number: int, images: int, timeout: float) -> Node:
    folder = root / f"node-{number}"
    folder.mkdir()
    url = f"sqlite:///{folder}/catalog.sqlite"
    started = time.perf_counter()
    with _seeded(1000 + number):
        repository, rate = generator.populate(url, images, 100, folder)
    studies = _journal(repository)
    repository.close()  # type: ignore[attr-defined]
    node = Node(f"node-{number}", folder / "repo")
    config = node.repo / "fairimage.toml"
    config.write_text(config.read_text() + f'node_name = "{node.name}"\npeer_timeout = {timeout}\n')
    print(
        f"{node.name}: {images:,} images, {studies:,} studies in {time.perf_counter() - started:.1f} s "
        f"({rate:,.0f} images/s)",
        flush=True,
    )
    return node


def harvest(node: Node, peers: list[Node]) -> dict[str, object]:
    """Add the peers and harvest them from the start, then again (nothing changed): ``changes`` counts what
    the feeds sent (a study once per page its audit entries fall in), ``studies`` what was kept."""
    for peer in peers:
        node.cli("peer", "add", peer.url)
    started = time.perf_counter()
    outcomes = json.loads(node.cli("harvest", "--json").stdout)
    seconds = time.perf_counter() - started
    changes, pages = sum(o["kept"] for o in outcomes), sum(o["pages"] for o in outcomes)
    studies = sum(peer["records"] for peer in json.loads(node.cli("peer", "list", "--json").stdout))
    started = time.perf_counter()
    again = json.loads(node.cli("harvest", "--json").stdout)
    nothing = time.perf_counter() - started
    found = {
        "changes": changes,
        "studies": studies,
        "pages": pages,
        "seconds": round(seconds, 2),
        "changes_per_s": round(changes / seconds, 1),
        "studies_per_s": round(studies / seconds, 1),
        "again_changes": sum(o["kept"] + o["dropped"] for o in again),
        "again_seconds": round(nothing, 2),
    }
    print(
        f"harvest: {changes:,} changes ({studies:,} studies kept) in {pages} pages, {seconds:.1f} s "
        f"({changes / seconds:,.0f} changes/s, {studies / seconds:,.0f} studies/s, CLI start included); "
        f"again: {found['again_changes']} changes in {nothing:.1f} s",
        flush=True,
    )
    return found


def make_queries(rng: random.Random, count: int) -> dict[str, list[Query]]:
    words, taxa, methods = generator.WORDS, generator.TAXA, generator.METHODS
    return {
        "text": [{"q": " ".join(rng.sample(words, 2))} for _ in range(count)],
        "facet": [{"organism": f"NCBITaxon:{rng.choice(taxa)}"} for _ in range(count)],
        "text+facet": [
            {"q": rng.choice(words), "imaging_method": f"FBbi:{rng.choice(methods):08d}"}
            for _ in range(count)
        ],
    }


@dataclass
class Answer:
    ms: float
    total: int  # the federated total (the local total with scope=local)
    studies: int
    peers: dict[str, str]  # name -> status
    peer_ms: dict[str, int]


def ask(client: httpx.Client, url: str, query: Query, extra: Query) -> Answer:
    started = time.perf_counter()
    response = client.get(url + "/api/search", params={**query, **extra})
    ms = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    body = response.json()
    federated = body.get("federated")
    if federated is None:
        return Answer(ms, body["total"], len(body["facets"].get("study", [])), {}, {})
    statuses = {peer["name"]: peer["status"] for peer in federated["peers"]}
    return Answer(
        ms,
        federated["total"],
        len(federated["studies"]),
        statuses,
        {peer["name"]: peer["ms"] for peer in federated["peers"]},
    )


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 1),
        "max_ms": round(ordered[-1], 1),
    }


def run_mode(
    client: httpx.Client, url: str, queries: dict[str, list[Query]], extra: Query
) -> dict[str, list[Answer]]:
    answers: dict[str, list[Answer]] = {}
    for case, chosen in queries.items():
        ask(client, url, chosen[0], extra)  # warm the caches once
        answers[case] = [ask(client, url, query, extra) for query in chosen]
    return answers


def summarise(
    name: str, answers: dict[str, list[Answer]], check: Callable[[Answer], bool] | None = None
) -> dict[str, Any]:
    found: dict[str, Any] = {}
    every: list[float] = []
    for case, listed in answers.items():
        samples = [answer.ms for answer in listed]
        every += samples
        found[case] = percentiles(samples)
    found["all"] = percentiles(every)
    found["queries"] = len(every)
    flat = [answer for listed in answers.values() for answer in listed]
    if check is not None:
        found["status_failures"] = sum(not check(answer) for answer in flat)
    peer_ms: dict[str, list[float]] = {}
    for answer in flat:
        for peer, ms in answer.peer_ms.items():
            if answer.peers[peer] == "live":
                peer_ms.setdefault(peer, []).append(ms)
    if peer_ms:
        found["peer_search_ms"] = {peer: percentiles(samples) for peer, samples in sorted(peer_ms.items())}
    statuses: dict[str, dict[str, int]] = {}
    for answer in flat:
        for peer, status in answer.peers.items():
            statuses.setdefault(peer, {}).setdefault(status, 0)
            statuses[peer][status] += 1
    if statuses:
        found["statuses"] = statuses
    overall = percentiles(every)
    print(
        f"  {name:29s} p50 {overall['p50_ms']:7.1f}  p95 {overall['p95_ms']:7.1f}  "
        f"max {overall['max_ms']:7.1f} ms  {statuses or ''}",
        flush=True,
    )
    return found


def mismatches(reference: dict[str, list[Answer]], other: dict[str, list[Answer]]) -> int:
    """Queries whose federated total differs from the reference's (the same data, asked otherwise)."""
    return sum(
        a.total != b.total for case in reference for a, b in zip(reference[case], other[case], strict=False)
    )


def searches(nodes: list[Node], queries: dict[str, list[Query]], hang: int, timeout: float) -> dict[str, Any]:
    try:
        return _searches(nodes, queries, hang, timeout)
    except httpx.TransportError as exc:
        codes = {node.name: node.server.poll() if node.server else "stopped" for node in nodes}
        raise RuntimeError(f"node 1 stopped answering ({exc!r}); server exit codes: {codes}") from exc


def _searches(
    nodes: list[Node], queries: dict[str, list[Query]], hang: int, timeout: float
) -> dict[str, Any]:
    url, third = nodes[0].url, nodes[2].name
    live_params = {"scope": "federated", "live": "true"}
    found: dict[str, Any] = {}
    with httpx.Client(timeout=60) as client:
        found["local"] = summarise("local (scope=local)", run_mode(client, url, queries, {"scope": "local"}))
        harvested = run_mode(client, url, queries, {"scope": "federated"})
        found["federated"] = summarise("federated, harvested", harvested)
        live = run_mode(client, url, queries, live_params)
        found["live"] = _checked("federated live, all up", live, harvested, _all_live)
        nodes[2].stop()
        down = run_mode(client, url, queries, live_params)
        found["live_node3_down"] = _checked(
            "federated live, node 3 down",
            down,
            harvested,
            lambda a: a.peers.get(third) in ("down", "timeout"),
        )
        silent = Silent(nodes[2].port)
        try:
            hung = run_mode(
                client, url, {case: listed[:hang] for case, listed in queries.items()}, live_params
            )
        finally:
            silent.close()
        found["live_node3_silent"] = _checked(
            "federated live, node 3 silent", hung, harvested, lambda a: a.peers.get(third) == "timeout"
        )
    for mode in ("live_node3_down", "live_node3_silent"):
        found[mode]["max_over_timeout_ms"] = round(found[mode]["all"]["max_ms"] - timeout * 1000, 1)
    return found


def _all_live(answer: Answer) -> bool:
    return set(answer.peers.values()) == {"live"}


def _checked(
    name: str,
    answers: dict[str, list[Answer]],
    harvested: dict[str, list[Answer]],
    check: Callable[[Answer], bool],
) -> dict[str, Any]:
    found = summarise(name, answers, check)
    found["total_mismatches_vs_harvested"] = mismatches(harvested, answers)
    return found


def table(found: dict[str, Any]) -> None:
    print("\n| mode | case | p50 ms | p95 ms | max ms |\n|---|---|---|---|---|")
    for mode in ("local", "federated", "live", "live_node3_down", "live_node3_silent"):
        for case in (*CASES, "all"):
            row = found[mode][case]
            print(f"| {mode} | {case} | {row['p50_ms']:.1f} | {row['p95_ms']:.1f} | {row['max_ms']:.1f} |")


def verdicts(found: dict[str, Any], timeout: float, margin: float) -> dict[str, bool]:
    limit = (timeout + margin) * 1000
    down, silent = found["live_node3_down"], found["live_node3_silent"]
    return {
        "live_p95_within_150ms": found["live"]["all"]["p95_ms"] <= TARGET_P95_MS,
        "down_max_within_timeout_plus_margin": down["all"]["max_ms"] <= limit,
        "silent_max_within_timeout_plus_margin": silent["all"]["max_ms"] <= limit,
        "statuses_all_as_expected": all(
            found[mode]["status_failures"] == 0 for mode in ("live", "live_node3_down", "live_node3_silent")
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images-per-node", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200, help="per case and mode")
    parser.add_argument("--nodes", type=int, default=3, choices=[3], help="node 1 and its two peers")
    parser.add_argument("--timeout", type=float, default=1.0, help="node 1's peer_timeout, seconds")
    parser.add_argument("--margin", type=float, default=0.25, help="allowed over the timeout, seconds")
    parser.add_argument("--hang-queries", type=int, default=20, help="per case with node 3 silent")
    parser.add_argument("--keep", action="store_true", help="keep the repositories and server logs")
    args = parser.parse_args()
    results: dict[str, Any] = {
        "date": datetime.now(UTC).date().isoformat(),
        "images_per_node": args.images_per_node,
        "studies_per_node": args.images_per_node // 100,
        "nodes": args.nodes,
        "peer_timeout_s": args.timeout,
        "queries_per_case": args.queries,
        "machine": platform.platform(),
        "cores": os.cpu_count(),
    }
    root = Path(tempfile.mkdtemp(prefix="fairimage-federation-"))
    print(f"repositories in {root}", flush=True)
    nodes: list[Node] = []
    try:
        nodes = [make_node(root, n, args.images_per_node, args.timeout) for n in range(1, args.nodes + 1)]
        for node in nodes:
            node.serve()
        results["harvest"] = harvest(nodes[0], nodes[1:])
        queries = make_queries(random.Random(1), args.queries)
        results.update(searches(nodes, queries, args.hang_queries, args.timeout))
    finally:
        for node in nodes:
            node.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    table(results)
    results["verdicts"] = verdicts(results, args.timeout, args.margin)
    print(json.dumps(results["verdicts"], indent=1))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"federation-{results['date']}.json"
    out.write_text(json.dumps(results, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
