"""Federation against a peer that misbehaves: the real CLI adds and harvests a fake fairimage node (an HTTP
server in a thread of the test process, holding its own Ed25519 key) that can be unreachable, not a node,
change its key, forge or alter its pages, send malformed ones, claim another node's records or drop the
connection half-way. What a user sees is one clear line, and a record count that never shows half a page.

Each 'fairimage' command costs about a second and a half (importing the product), so one fake node serves
all the tests of a worker, and one repository made by 'fairimage init' (and one with the fake node added as
its peer by 'fairimage peer add') is copied for each test."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fairimage.model.federation.checkpoints import new_signing_key, public_key_text
from fairimage.model.federation.feed import (
    FEED,
    SIGNATURE_HEADER,
    WELL_KNOWN,
    Change,
    FeedPage,
    GroupRecord,
    NodeDocument,
    StudyRecord,
    pid_digest,
)
from fairimage.services.federation.identity import fingerprint
from tests.conftest import FAIRIMAGE, _free_port, run_cli

Json = dict[str, Any]
NAME = "fake-peer"
ELSEWHERE = "http://elsewhere.example/pid/X"


@dataclass
class FakeNode:
    """A fairimage node as its peers see it. Its feed is ``batches``: the page after the cursor ``c<i>``
    ('' for the first) holds ``batches[i]``, a list of studies as they are now (Change) and of PIDs of
    studies gone (str); past the last batch a page is empty. The fields after ``batches`` are its
    misbehaviours, each off until a test sets it."""

    url: str
    first_key: Ed25519PrivateKey = field(default_factory=new_signing_key)
    key: Ed25519PrivateKey = field(init=False)  # published in its node document, signs its pages
    batches: list[list[Change | str]] = field(default_factory=list)
    signer: Ed25519PrivateKey | None = None  # signs its pages instead of ``key``
    mangle: Callable[[Json], None] | None = None  # breaks a page's JSON before it is signed
    tamper: Callable[[bytes], bytes] | None = None  # alters a page's body after it is signed
    document: tuple[int, bytes] | None = None  # answered at WELL_KNOWN instead of its node document
    drop: set[str] = field(default_factory=set)  # a feed request after one of these gets no answer
    asked: list[str] = field(default_factory=list)  # the ``after`` of every feed request, in order

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Behave, with the first key, an empty feed and no request seen."""
        self.key, self.batches, self.asked, self.drop = self.first_key, [], [], set()
        self.signer, self.mangle, self.tamper, self.document = None, None, None, None

    def study(self, id_: str) -> Change:
        record = StudyRecord(access="public", title=f"Study {id_}", url=f"{self.url}/studies/{id_}", images=1)
        groups = [GroupRecord(text=f"cells of study {id_}", images=1)]
        return Change(id=id_, pid=self.pid(id_), stamp=datetime.now(UTC), study=record, groups=groups)

    def pid(self, id_: str) -> str:
        return f"{self.url}/pid/{id_}"

    def node_document(self) -> tuple[int, bytes]:
        if self.document is not None:
            return self.document
        document = NodeDocument(name=NAME, url=self.url, public_key=public_key_text(self.key))
        return 200, document.model_dump_json().encode()

    def page(self, after: str) -> tuple[bytes, str]:
        """The feed page after ``after``, and its signature (base64)."""
        index = int(after.removeprefix("c") or 0)
        last = index >= len(self.batches)
        batch = [] if last else self.batches[index]
        feed = FeedPage(
            node=NAME,
            after=after,
            cursor=after if last else f"c{index + 1}",
            more=index + 1 < len(self.batches),
            changes=[change for change in batch if isinstance(change, Change)],
            gone=[pid_digest(pid) for pid in batch if isinstance(pid, str)],
        )
        body = feed.model_dump_json().encode()
        if self.mangle is not None:
            page = json.loads(body)
            self.mangle(page)
            body = json.dumps(page).encode()
        signature = (self.signer or self.key).sign(body)
        if self.tamper is not None:
            body = self.tamper(body)
        return body, base64.b64encode(signature).decode()


class _Server(ThreadingHTTPServer):
    node: FakeNode


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        node, parts = self.server.node, urlsplit(self.path)
        if parts.path == WELL_KNOWN:
            self._answer(*node.node_document())
        elif parts.path == FEED:
            after = parse_qs(parts.query, keep_blank_values=True).get("after", [""])[0]
            node.asked.append(after)
            if after in node.drop:
                self.close_connection = True  # the connection closes with nothing sent: cut off
                return
            body, signature = node.page(after)
            self._answer(200, body, {SIGNATURE_HEADER: signature})
        else:
            self._answer(404, b"no such page")

    def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def fake_node() -> Iterator[FakeNode]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.node = FakeNode(url=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server.node
    server.shutdown()
    server.server_close()


@pytest.fixture
def node(fake_node: FakeNode) -> Iterator[FakeNode]:
    """The fake node, behaving, with an empty feed; as it was again after the test."""
    fake_node.reset()
    yield fake_node
    fake_node.reset()


@pytest.fixture(scope="session")
def initialised(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("initialised") / "repo"
    run_cli("init", repo, check=True)
    return repo


@pytest.fixture(scope="session")
def with_peer(tmp_path_factory: pytest.TempPathFactory, initialised: Path, fake_node: FakeNode) -> Path:
    fake_node.reset()
    repo = Path(shutil.copytree(initialised, tmp_path_factory.mktemp("with-peer") / "repo"))
    run_cli("peer", "add", fake_node.url, "--repo", repo, check=True)
    return repo


@pytest.fixture
def repo(initialised: Path, tmp_path: Path) -> Path:
    """A repository made by 'fairimage init'."""
    return Path(shutil.copytree(initialised, tmp_path / "repo"))


@pytest.fixture
def peered(with_peer: Path, tmp_path: Path, node: FakeNode) -> Path:
    """A repository with the fake node added as its peer, never harvested."""
    return Path(shutil.copytree(with_peer, tmp_path / "repo"))


def harvest(repo: Path) -> tuple[int, Json]:
    """Exit code and the one peer's outcome of 'fairimage harvest --json'."""
    result = run_cli("harvest", "--repo", repo, "--json")
    assert "Traceback" not in result.stderr, result.stderr
    [outcome] = json.loads(result.stdout)
    return result.returncode, outcome


def counts(outcome: Json) -> tuple[int, int, int]:
    return outcome["pages"], outcome["kept"], outcome["dropped"]


def peer(repo: Path) -> Json:
    """The one peer's record in 'fairimage peer list --json'."""
    [record] = json.loads(run_cli("peer", "list", "--repo", repo, "--json", check=True).stdout)
    return dict(record)


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one line a failed command printed on stderr (no traceback, nothing else)."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# --- adding a peer ---


def _nothing_listens(node: FakeNode) -> str:
    return f"http://127.0.0.1:{_free_port()}"


def _answers_404(node: FakeNode) -> str:
    node.document = (404, b"no such page")
    return node.url


def _document_without_key(node: FakeNode) -> str:
    node.document = (200, json.dumps({"name": NAME, "url": node.url}).encode())
    return node.url


def _document_with_malformed_key(node: FakeNode) -> str:
    document = {"name": NAME, "url": node.url, "public_key": "A" * 41 + "==="}  # 44 characters, not base64
    node.document = (200, json.dumps(document).encode())
    return node.url


@pytest.mark.parametrize(
    ("address", "words"),
    [
        pytest.param(_nothing_listens, ["cannot reach"], id="nothing-listens"),
        pytest.param(_answers_404, ["answered 404", "not a fairimage node"], id="404"),
        pytest.param(_document_without_key, ["not a fairimage node", "public_key"], id="no-public-key"),
        pytest.param(
            _document_with_malformed_key,
            ["not a fairimage node", "public_key"],
            id="malformed-key",
        ),
    ],
)
def test_peer_add_refuses_what_is_not_a_reachable_node_in_one_line(
    repo: Path, node: FakeNode, address: Callable[[FakeNode], str], words: list[str]
) -> None:
    url = address(node)
    line = error_line(run_cli("peer", "add", url, "--repo", repo))
    assert url in line
    for word in words:
        assert word in line


@contextmanager
def serving(repo: Path) -> Iterator[str]:
    """'fairimage serve' of ``repo`` at a free port, once it publishes its node document."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAIRIMAGE_")}
    command = [FAIRIMAGE, "serve", "--repo", str(repo), "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 60
    try:
        while True:
            try:
                if httpx.get(url + WELL_KNOWN, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, "the server exited"
            assert time.monotonic() < deadline, "the server did not answer"
            time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_a_node_cannot_be_its_own_peer(repo: Path) -> None:
    with serving(repo) as url:
        line = error_line(run_cli("peer", "add", url + "/", "--repo", repo))
    assert f"{url} is this node itself" in line


# --- harvesting ---


def harvested(repo: Path, node: FakeNode) -> None:
    """The fake node's feed, one page of two studies, harvested."""
    node.batches = [[node.study("s1"), node.study("s2")]]
    code, outcome = harvest(repo)
    assert (code, counts(outcome), outcome["error"]) == (0, (1, 2, 0), ""), outcome


def test_a_peer_whose_key_changed_is_refused_loudly(peered: Path, node: FakeNode) -> None:
    harvested(peered, node)
    pinned, node.key = node.key, new_signing_key()  # it now publishes, and signs with, another key
    node.batches.append([node.study("s3")])
    result = run_cli("harvest", "--repo", peered)
    assert result.returncode == 5 and "Traceback" not in result.stderr
    [refusal] = [line for line in result.stderr.splitlines() if "REFUSED" in line]
    assert refusal.startswith(f"{NAME}: REFUSED: peer {NAME} ({node.url}) now publishes the key ")
    found = re.search(r"the key ([0-9a-f]{16}), not the ([0-9a-f]{16}) pinned", refusal)
    assert found is not None, refusal
    now, then = found.groups()
    assert (now, then) == (fingerprint(public_key_text(node.key)), fingerprint(public_key_text(pinned)))
    assert now != then
    assert node.asked == [""]  # nothing was asked of it once its document showed the new key
    record = peer(peered)
    assert record["records"] == 2 and "REFUSED" in record["last_error"]


def _forged(node: FakeNode) -> None:
    node.signer = new_signing_key()


def _altered(node: FakeNode) -> None:
    node.tamper = lambda body: body.replace(b"Study s2", b"Study s9")


def _stamp_not_a_date(node: FakeNode) -> None:
    node.mangle = lambda page: page["changes"][1].update(stamp="last tuesday")


def _another_nodes_pid(node: FakeNode) -> None:
    node.batches[0][1] = node.study("X").model_copy(update={"pid": ELSEWHERE})


SIGNED = f"not signed by peer {NAME}'s pinned key"
REFUSALS: list[tuple[Callable[[FakeNode], None], str]] = [
    (_forged, SIGNED),
    (_altered, SIGNED),
    (_stamp_not_a_date, "not a change feed page (changes.1.stamp:"),
    (_another_nodes_pid, f"'{ELSEWHERE}' is not an identifier of"),
]


def test_a_refused_page_keeps_nothing(peered: Path, node: FakeNode) -> None:
    """Bad versions of a page whose first study is good: each is refused whole, with one error naming what
    is wrong, and neither that study nor the cursor is kept (one repository for them all, for speed)."""
    for fault, words in REFUSALS:
        node.reset()
        node.batches = [[node.study("s1"), node.study("s2")]]
        fault(node)
        code, outcome = harvest(peered)
        assert code == 5 and words in outcome["error"], (fault.__name__, outcome)
        assert (counts(outcome), outcome["cursor"]) == ((0, 0, 0), ""), (fault.__name__, outcome)
        assert node.asked == [""], fault.__name__  # from the start: the cursor did not move
    record = peer(peered)
    assert record["records"] == 0 and REFUSALS[-1][1] in record["last_error"]


def test_a_cut_off_harvest_resumes_where_it_stopped_and_a_repeat_keeps_nothing(
    peered: Path, node: FakeNode
) -> None:
    node.batches = [[node.study(f"s{page}{n}") for n in (1, 2)] for page in (1, 2, 3)]
    node.drop = {"c2"}  # the request for page 3 is cut off
    code, outcome = harvest(peered)
    assert code == 5 and "cannot reach" in outcome["error"]
    assert (counts(outcome), outcome["cursor"]) == ((2, 4, 0), "c2")
    assert node.asked == ["", "c1", "c2"]
    record = peer(peered)
    assert record["records"] == 4 and "cannot reach" in record["last_error"]

    node.drop.clear()
    code, outcome = harvest(peered)
    assert (code, counts(outcome), outcome["cursor"]) == (0, (1, 2, 0), "c3")
    assert node.asked[3:] == ["c2"]  # from where it stopped, not from the start

    code, outcome = harvest(peered)  # again: the one (empty) page after the last cursor, nothing kept
    assert (code, counts(outcome), outcome["cursor"]) == (0, (1, 0, 0), "c3")
    assert node.asked[4:] == ["c3"]
    record = peer(peered)
    assert (record["records"], record["last_error"]) == (6, "")


def test_a_study_gone_at_its_node_is_dropped_here(peered: Path, node: FakeNode) -> None:
    harvested(peered, node)
    node.batches.append([node.pid("s1"), node.pid("never-harvested")])
    code, outcome = harvest(peered)
    assert (code, counts(outcome)) == (0, (1, 0, 1))
    assert node.asked == ["", "c1"]
    assert peer(peered)["records"] == 1


def test_a_page_that_does_not_move_its_cursor_is_refused(peered: Path, node: FakeNode) -> None:
    def stuck(page: Json) -> None:
        if len(node.asked) <= 5:  # then it gives up, so that the product's loop ends
            page.update(cursor=page["after"], more=True)

    node.batches, node.mangle = [[node.study("s1")]], stuck
    code, outcome = harvest(peered)
    assert node.asked == [""]
    assert code == 5 and "cursor" in outcome["error"]
