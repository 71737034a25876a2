"""The transparency log's pure core: RFC 9162 Merkle proofs and C2SP checkpoints, notes and cosignatures.

Known answers come from the RFC 6962 test vectors of transparency-dev/merkle (proof/verify_test.go) and
the signed note of golang.org/x/mod/sumdb/note; everything else is checked exhaustively for small trees.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Sequence

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fairimage.model.federation.checkpoints import (
    Checkpoint,
    CheckpointError,
    cosign,
    key_id,
    load_public_key,
    new_signing_key,
    open_note,
    public_key_text,
    sign_note,
    verify_cosignature,
)
from fairimage.model.federation.merkle import (
    EMPTY_ROOT,
    TreeBuilder,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

# --- RFC 6962 vectors (transparency-dev/merkle proof/verify_test.go, certificate-transparency-go) ---

CT_INPUTS = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
]
CT_LEAVES = [leaf_hash(data) for data in CT_INPUTS]
CT_ROOTS = [  # MTH of the first 1..8 inputs
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION = [  # (index, tree size, audit path); the Go file numbers leaves from 1
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
CT_CONSISTENCY = [  # (old size, new size, proof)
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def _hashes(hexes: Sequence[str]) -> list[bytes]:
    return [bytes.fromhex(h) for h in hexes]


def _reference_root(leaves: Sequence[bytes]) -> bytes:
    """MTH as RFC 9162 §2.1.1 defines it, recursively: the independent reference for TreeBuilder."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(_reference_root(leaves[:k]), _reference_root(leaves[k:]))


def _leaves(n: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def _flip(value: bytes) -> bytes:
    return bytes([value[0] ^ 0x10]) + value[1:]


def _accepts(verify: Callable[..., bool], *probe: object) -> bool:
    """A probe passes only if verification returns True; a ValueError (impossible sizes) is a rejection."""
    try:
        return verify(*probe)
    except ValueError:
        return False


# --- Merkle tree hashes ---


def test_ct_vectors_roots() -> None:
    assert (
        root([])
        == EMPTY_ROOT
        == bytes.fromhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    )
    for size, expected in enumerate(CT_ROOTS, start=1):
        assert root(CT_LEAVES[:size]).hex() == expected


def test_tree_builder_matches_the_recursive_definition() -> None:
    leaves = _leaves(200)
    builder = TreeBuilder()
    assert builder.size == 0 and builder.root() == EMPTY_ROOT
    for size in range(1, 201):
        builder.append(leaves[size - 1])
        assert builder.size == size
        assert builder.root() == _reference_root(leaves[:size]) == root(leaves[:size])


def test_tree_builder_keeps_one_hash_per_perfect_subtree() -> None:
    builder = TreeBuilder()
    builder.extend(_leaves(1000))
    assert len(builder._stack) == bin(1000).count("1")


def test_tree_builder_refuses_non_hashes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        TreeBuilder().append(b"not a hash")


# --- inclusion proofs ---


@pytest.mark.parametrize(("index", "size", "path"), CT_INCLUSION)
def test_ct_vectors_inclusion(index: int, size: int, path: list[str]) -> None:
    proof = _hashes(path)
    tree_root = bytes.fromhex(CT_ROOTS[size - 1])
    assert inclusion_proof(CT_LEAVES, index, size) == proof
    assert verify_inclusion(CT_LEAVES[index], index, size, proof, tree_root)
    # the probes of transparency-dev/merkle's corruptInclusionProof
    leaf = CT_LEAVES[index]
    probes = [
        (leaf, index - 1, size, proof, tree_root),
        (leaf, index + 1, size, proof, tree_root),
        (leaf, index ^ 2, size, proof, tree_root),
        (leaf, index, size * 2, proof, tree_root),
        (leaf, index, size // 2, proof, tree_root),
        (b"WrongLeaf", index, size, proof, tree_root),
        (leaf, index, size, proof, EMPTY_ROOT),
        (leaf, index, size, proof, SOME_HASH),
        (leaf, index, size, [*proof, b""], tree_root),
        (leaf, index, size, [*proof, tree_root], tree_root),
        (leaf, index, size, [b"", *proof], tree_root),
        (leaf, index, size, [tree_root, *proof], tree_root),
        (leaf, index, size, proof[:-1], tree_root),
        (leaf, index, size, [proof[0], SOME_HASH, *proof[1:]], tree_root),
    ]
    for i in range(len(proof)):
        probes.append((leaf, index, size, [*proof[:i], _flip(proof[i]), *proof[i + 1 :]], tree_root))
    for probe in probes:
        assert not _accepts(verify_inclusion, *probe), probe


def test_inclusion_single_leaf_tree() -> None:
    leaf = leaf_hash(b"data")
    assert inclusion_proof([leaf], 0, 1) == []
    assert verify_inclusion(leaf, 0, 1, [], leaf)
    assert not verify_inclusion(leaf, 0, 1, [], b"")
    assert not verify_inclusion(b"", 0, 1, [], leaf)


def test_inclusion_every_leaf_of_every_tree_up_to_64() -> None:
    leaves = _leaves(64)
    for size in range(1, 65):
        tree_root = root(leaves[:size])
        for index in range(size):
            proof = inclusion_proof(leaves, index, size)
            assert verify_inclusion(leaves[index], index, size, proof, tree_root)
            assert not verify_inclusion(_flip(leaves[index]), index, size, proof, tree_root)
            assert not verify_inclusion(leaves[index], index, size, proof, _flip(tree_root))
            assert not verify_inclusion(leaves[index], index, size, [*proof, tree_root], tree_root)
            if proof:
                assert not verify_inclusion(leaves[index], index, size, proof[:-1], tree_root)
                assert not verify_inclusion(
                    leaves[index], index, size, [_flip(proof[0]), *proof[1:]], tree_root
                )


@pytest.mark.parametrize(("index", "size"), [(0, 0), (-1, 1), (1, 1), (2, 1)])
def test_inclusion_outside_the_tree_is_refused(index: int, size: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        verify_inclusion(SOME_HASH, index, size, [], EMPTY_ROOT)
    with pytest.raises(ValueError, match="out of range"):
        inclusion_proof(_leaves(1), index, size)


def test_inclusion_proof_needs_the_leaves_of_that_size() -> None:
    with pytest.raises(ValueError, match="the log holds 3 leaves"):
        inclusion_proof(_leaves(3), 0, 4)


# --- consistency proofs ---


@pytest.mark.parametrize(("old", "new", "path"), CT_CONSISTENCY)
def test_ct_vectors_consistency(old: int, new: int, path: list[str]) -> None:
    proof = _hashes(path)
    old_root, new_root = bytes.fromhex(CT_ROOTS[old - 1]), bytes.fromhex(CT_ROOTS[new - 1])
    assert consistency_proof(CT_LEAVES, old, new) == proof
    assert verify_consistency(old, new, old_root, new_root, proof)
    if not proof:
        return
    # the probes of transparency-dev/merkle's corruptConsistencyProof
    probes = [
        (old - 1, new, old_root, new_root, proof),
        (old + 1, new, old_root, new_root, proof),
        (old ^ 2, new, old_root, new_root, proof),
        (old, new * 2, old_root, new_root, proof),
        (old, new // 2, old_root, new_root, proof),
        (old, new, b"WrongRoot", new_root, proof),
        (old, new, old_root, b"WrongRoot", proof),
        (old, new, new_root, old_root, proof),
        (old, new, old_root, new_root, []),
        (old, new, old_root, new_root, [*proof, b""]),
        (old, new, old_root, new_root, [*proof, old_root]),
        (old, new, old_root, new_root, [*proof, new_root]),
        (old, new, old_root, new_root, [b"", *proof]),
        (old, new, old_root, new_root, [old_root, *proof]),
        (old, new, old_root, new_root, [new_root, *proof]),
        (old, new, old_root, new_root, [proof[0], *proof]),
        (old, new, old_root, new_root, proof[:-1]),
    ]
    for i in range(len(proof)):
        probes.append((old, new, old_root, new_root, [*proof[:i], _flip(proof[i]), *proof[i + 1 :]]))
    for probe in probes:
        assert not _accepts(verify_consistency, *probe), probe


def test_consistency_every_pair_up_to_32() -> None:
    leaves = _leaves(32)
    roots = [root(leaves[:size]) for size in range(33)]
    for new in range(33):
        for old in range(new + 1):
            proof = consistency_proof(leaves, old, new)
            assert verify_consistency(old, new, roots[old], roots[new], proof), (old, new)
            if old in (0, new):
                assert proof == []
                continue
            assert not verify_consistency(old, new, roots[old], _flip(roots[new]), proof)
            assert not verify_consistency(old, new, _flip(roots[old]), roots[new], proof)
            assert not verify_consistency(old, new, roots[old], roots[new], [*proof, roots[new]])
            assert not verify_consistency(old, new, roots[old], roots[new], proof[:-1])
            for i in range(len(proof)):
                tampered = [*proof[:i], _flip(proof[i]), *proof[i + 1 :]]
                assert not verify_consistency(old, new, roots[old], roots[new], tampered), (old, new, i)


def test_consistency_into_a_tree_of_64() -> None:
    leaves = _leaves(64)
    new_root = root(leaves)
    for old in range(65):
        proof = consistency_proof(leaves, old, 64)
        assert verify_consistency(old, 64, root(leaves[:old]), new_root, proof)


def test_consistency_trivial_cases() -> None:
    one = leaf_hash(b"one")
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert verify_consistency(0, 5, EMPTY_ROOT, SOME_HASH, [])
    assert verify_consistency(1, 1, one, one, [])
    assert not verify_consistency(0, 0, EMPTY_ROOT, SOME_HASH, [])  # equal sizes, different roots
    assert not verify_consistency(1, 1, one, SOME_HASH, [])
    assert not verify_consistency(0, 5, SOME_HASH, SOME_HASH, [])  # the empty tree has one root
    assert not verify_consistency(1, 1, one, one, [EMPTY_ROOT])  # roots match, the proof is not empty
    assert not verify_consistency(0, 1, EMPTY_ROOT, one, [EMPTY_ROOT])
    assert not verify_consistency(1, 2, one, SOME_HASH, [])  # an empty proof between different sizes


@pytest.mark.parametrize(("old", "new"), [(1, 0), (2, 1), (-1, 3)])
def test_consistency_backwards_is_refused(old: int, new: int) -> None:
    with pytest.raises(ValueError, match="between 0 and the new size"):
        verify_consistency(old, new, EMPTY_ROOT, EMPTY_ROOT, [])
    with pytest.raises(ValueError, match="between 0 and the new size"):
        consistency_proof(_leaves(4), old, new)


# --- checkpoints and signed notes ---

LOG = "audit.example.org/fairimage"
CHECKPOINT = Checkpoint(LOG, 8, bytes.fromhex(CT_ROOTS[7]))

# golang.org/x/mod/sumdb/note's example: signer key PRIVATE+KEY+PeterNeumann+c74f20a3+<0x01 || seed>
GO_SEED = base64.b64decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")[1:]
GO_PUBLIC = base64.b64decode("ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")[1:]
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
)
GO_SIGNATURE = "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
GO_NOTE = f"{GO_TEXT}\n— PeterNeumann {GO_SIGNATURE}\n"


@pytest.fixture(scope="module")
def log_key() -> Ed25519PrivateKey:
    return new_signing_key()


def test_checkpoint_body_is_the_c2sp_note_text() -> None:
    root_b64 = base64.b64encode(CHECKPOINT.root).decode()
    assert CHECKPOINT.body() == f"{LOG}\n8\n{root_b64}\n"
    assert Checkpoint.parse(CHECKPOINT.body()) == CHECKPOINT
    with_extension = Checkpoint(LOG, 0, EMPTY_ROOT, ("extension line",))
    assert Checkpoint.parse(with_extension.body()) == with_extension


def test_note_format_matches_the_go_reference() -> None:
    """Ed25519 is deterministic, so our note must be the Go package's byte for byte (key ID c74f20a3)."""
    key = Ed25519PrivateKey.from_private_bytes(GO_SEED)
    assert key.public_key().public_bytes_raw() == GO_PUBLIC
    assert key_id("PeterNeumann", 0x01, key.public_key()).hex() == "c74f20a3"
    assert sign_note(GO_TEXT, "PeterNeumann", key) == GO_NOTE


def test_note_roundtrip(log_key: Ed25519PrivateKey) -> None:
    note = sign_note(CHECKPOINT.body(), LOG, log_key)
    body, _, line = note.partition("\n\n")
    assert body + "\n" == CHECKPOINT.body() and line.startswith(f"— {LOG} ") and line.endswith("\n")
    payload = base64.b64decode(line.split(" ")[2])
    expected_id = hashlib.sha256(LOG.encode() + b"\n\x01" + log_key.public_key().public_bytes_raw()).digest()[
        :4
    ]
    assert payload[:4] == expected_id and len(payload) == 68
    assert open_note(note, LOG, log_key.public_key()) == CHECKPOINT


def test_note_ignores_signatures_by_other_keys(log_key: Ed25519PrivateKey) -> None:
    other = new_signing_key()
    note = sign_note(CHECKPOINT.body(), LOG, log_key)
    note += sign_note(CHECKPOINT.body(), "other.example/key", other).split("\n\n")[1]
    note += cosign(CHECKPOINT, "witness.example/w1", other, 1_700_000_000)
    assert open_note(note, LOG, log_key.public_key()) == CHECKPOINT
    assert open_note(note, "other.example/key", other.public_key()) == CHECKPOINT


@pytest.mark.parametrize(
    "change",
    [
        lambda cp: Checkpoint(cp.origin + "x", cp.size, cp.root),
        lambda cp: Checkpoint(cp.origin, cp.size + 1, cp.root),
        lambda cp: Checkpoint(cp.origin, cp.size, _flip(cp.root)),
    ],
    ids=["origin", "size", "root"],
)
def test_a_changed_body_fails(log_key: Ed25519PrivateKey, change: Callable[[Checkpoint], Checkpoint]) -> None:
    note = sign_note(CHECKPOINT.body(), LOG, log_key)
    forged = note.replace(CHECKPOINT.body(), change(CHECKPOINT).body())
    with pytest.raises(CheckpointError, match="bad signature by"):
        open_note(forged, LOG, log_key.public_key())


def test_a_signature_by_another_key_fails(log_key: Ed25519PrivateKey) -> None:
    impostor = new_signing_key()
    note = sign_note(CHECKPOINT.body(), LOG, impostor)
    with pytest.raises(CheckpointError, match="no signature by"):
        open_note(note, LOG, log_key.public_key())
    # the same name and the log's key ID, but the impostor's signature
    ours = sign_note(CHECKPOINT.body(), LOG, log_key)
    theirs = note.split(" ")[-1]
    forged_payload = base64.b64decode(ours.split(" ")[-1])[:4] + base64.b64decode(theirs)[4:]
    forged = ours.rsplit(" ", 1)[0] + " " + base64.b64encode(forged_payload).decode() + "\n"
    with pytest.raises(CheckpointError, match="bad signature by"):
        open_note(forged, LOG, log_key.public_key())


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (f"{LOG}\n8\n", "malformed checkpoint body"),
        (f"{LOG}\neight\n{base64.b64encode(EMPTY_ROOT).decode()}\n", "size is not a number"),
        (f"{LOG}\n08\n{base64.b64encode(EMPTY_ROOT).decode()}\n", "size is not a number"),
        (f"{LOG}\n8\n{base64.b64encode(b'short').decode()}\n", "root is not 32 bytes"),
        (f"{LOG}\n8\nnot base64!\n", "root is not base64"),
    ],
)
def test_a_signed_but_malformed_body_fails(log_key: Ed25519PrivateKey, body: str, message: str) -> None:
    with pytest.raises(CheckpointError, match=message):
        open_note(sign_note(body, LOG, log_key), LOG, log_key.public_key())


@pytest.mark.parametrize(
    "text",
    [
        "",
        "no blank line\n— a AAAAAAA=\n",
        f"{LOG}\n\n",
        f"{LOG}\n\n- {LOG} AAAAAAA=\n",
        f"{LOG}\n\n— {LOG} AA\n",
    ],
)
def test_a_malformed_note_fails(log_key: Ed25519PrivateKey, text: str) -> None:
    with pytest.raises(CheckpointError, match=r"malformed|not base64"):
        open_note(text, LOG, log_key.public_key())


def test_sign_note_refuses_bad_names_and_bodies(log_key: Ed25519PrivateKey) -> None:
    for name in ["", "has space", "has+plus"]:
        with pytest.raises(CheckpointError, match="bad key name"):
            sign_note(CHECKPOINT.body(), name, log_key)
    with pytest.raises(CheckpointError, match="end with a newline"):
        sign_note("no newline", LOG, log_key)
    with pytest.raises(CheckpointError, match="control character"):
        sign_note("tab\there\n", LOG, log_key)


def test_checkpoint_refuses_impossible_values() -> None:
    with pytest.raises(CheckpointError, match="root is not 32 bytes"):
        Checkpoint(LOG, 1, b"short")
    with pytest.raises(CheckpointError, match="size"):
        Checkpoint(LOG, -1, EMPTY_ROOT)
    with pytest.raises(CheckpointError, match="malformed"):
        Checkpoint("two\nlines", 1, EMPTY_ROOT)


# --- cosignatures ---

WITNESS = "witness.example.org/w1"


def test_cosignature_roundtrip() -> None:
    witness = new_signing_key()
    line = cosign(CHECKPOINT, WITNESS, witness, 1_679_315_147)
    assert line.startswith(f"— {WITNESS} ") and line.endswith("\n")
    payload = base64.b64decode(line.split(" ")[2])
    assert (
        payload[:4]
        == key_id(WITNESS, 0x04, witness.public_key())
        != key_id(WITNESS, 0x01, witness.public_key())
    )
    assert int.from_bytes(payload[4:12], "big") == 1_679_315_147 and len(payload) == 4 + 8 + 64
    message = b"cosignature/v1\ntime 1679315147\n" + CHECKPOINT.body().encode()
    witness.public_key().verify(payload[12:], message)  # the signed message of tlog-cosignature
    assert verify_cosignature(CHECKPOINT, line, WITNESS, witness.public_key()) == 1_679_315_147


def test_spec_example_has_the_same_layout() -> None:
    """The cosignature in c2sp.org/tlog-cosignature decodes as key ID, time 1679315147 and 64 bytes."""
    example = (
        "jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZ"
        "qhf5nNo0xUe+mbIUBkBIfZ+qnA=="
    )
    payload = base64.b64decode(example)
    assert len(payload) == 76 and int.from_bytes(payload[4:12], "big") == 1679315147


def test_cosignature_tampering_fails() -> None:
    witness, other = new_signing_key(), new_signing_key()
    line = cosign(CHECKPOINT, WITNESS, witness, 1_700_000_000)
    other_checkpoint = Checkpoint(LOG, 9, CHECKPOINT.root)
    with pytest.raises(CheckpointError, match="bad cosignature"):
        verify_cosignature(other_checkpoint, line, WITNESS, witness.public_key())
    with pytest.raises(CheckpointError, match="not a cosignature by"):
        verify_cosignature(CHECKPOINT, line, WITNESS, other.public_key())
    with pytest.raises(CheckpointError, match="not a cosignature by"):
        verify_cosignature(CHECKPOINT, line, "witness.example.org/w2", witness.public_key())
    payload = bytearray(base64.b64decode(line.split(" ")[2]))
    payload[11] ^= 1  # a later timestamp than was signed
    retimed = f"— {WITNESS} {base64.b64encode(bytes(payload)).decode()}\n"
    with pytest.raises(CheckpointError, match="bad cosignature"):
        verify_cosignature(CHECKPOINT, retimed, WITNESS, witness.public_key())
    log_signature = sign_note(CHECKPOINT.body(), WITNESS, witness).split("\n\n")[1]
    with pytest.raises(CheckpointError, match="not a cosignature by"):  # a plain note signature, type 0x01
        verify_cosignature(CHECKPOINT, log_signature, WITNESS, witness.public_key())


def test_cosign_refuses_impossible_timestamps() -> None:
    for timestamp in (-1, 2**63):
        with pytest.raises(CheckpointError, match="timestamp"):
            cosign(CHECKPOINT, WITNESS, new_signing_key(), timestamp)


# --- keys ---


def test_public_key_text_roundtrip() -> None:
    key = new_signing_key()
    text = public_key_text(key)
    assert text == public_key_text(key.public_key()) and len(base64.b64decode(text)) == 32
    assert load_public_key(text).public_bytes_raw() == key.public_key().public_bytes_raw()


@pytest.mark.parametrize("text", ["", "not base64!", base64.b64encode(b"x" * 31).decode(), "AAAA===="])
def test_load_public_key_refuses_bad_input(text: str) -> None:
    with pytest.raises(CheckpointError, match="public key"):
        load_public_key(text)
