"""RFC 9162 (Certificate Transparency v2) Merkle tree hashes, inclusion and consistency proofs.

Leaves are given as leaf *hashes* (``leaf_hash(entry)``), so a caller can keep 32 bytes per audit entry
instead of the entries. Proof generation reads the whole list (O(n)); roots can be streamed through
``TreeBuilder`` in O(log n) memory. Verification follows RFC 9162 §2.1.3.2 and §2.1.4.2 step by step.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()  # RFC 9162 §2.1.1: MTH({}) = HASH()

_LEAF_PREFIX = b"\x00"  # RFC 9162 §2.1.1: domain separation of leaves ...
_NODE_PREFIX = b"\x01"  # ... and interior nodes, for second-preimage resistance


def leaf_hash(data: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 || d) (RFC 9162 §2.1.1): the hash of one log entry."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right) (RFC 9162 §2.1.1): the hash of an interior node."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than n (n > 1): where RFC 9162 §2.1.1 splits a tree."""
    return 1 << ((n - 1).bit_length() - 1)


def _check_hash(value: bytes, what: str) -> None:
    """Refuse anything but a 32-byte SHA-256 value, so a wrong type fails loudly and early."""
    if not isinstance(value, bytes | bytearray) or len(value) != HASH_SIZE:
        raise ValueError(f"{what} must be {HASH_SIZE} bytes (a SHA-256 hash), got {value!r:.80}")


class TreeBuilder:
    """Streaming MTH: appends leaf hashes one by one, keeping only the perfect subtrees' hashes.

    The stack holds one hash per set bit of ``size`` (largest subtree first), so memory is O(log n).
    """

    def __init__(self) -> None:
        self._size = 0
        self._stack: list[bytes] = []

    @classmethod
    def resume(cls, size: int, stack: Sequence[bytes]) -> TreeBuilder:
        """A builder that goes on from a ``state()`` kept earlier, so a log's root grows with its new
        entries only."""
        if size < 0 or len(stack) != bin(size).count("1"):
            raise ValueError(
                f"a tree of {size} leaves has {bin(max(size, 0)).count('1')} subtrees, not {len(stack)}"
            )
        for subtree in stack:
            _check_hash(subtree, "a subtree hash")
        builder = cls()
        builder._size, builder._stack = size, [bytes(subtree) for subtree in stack]
        return builder

    def state(self) -> tuple[int, list[bytes]]:
        """The size and the perfect subtrees' hashes, largest first: what ``resume`` takes."""
        return self._size, list(self._stack)

    @property
    def size(self) -> int:
        """The number of leaves appended so far."""
        return self._size

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash; merge equal-height subtrees, one merge per trailing 1 bit of the old size."""
        _check_hash(leaf, "a leaf hash")
        merged = bytes(leaf)
        carry = self._size
        while carry & 1:
            merged = node_hash(self._stack.pop(), merged)
            carry >>= 1
        self._stack.append(merged)
        self._size += 1

    def extend(self, leaves: Iterable[bytes]) -> None:
        """Append every leaf hash of an iterable (e.g. a database cursor) in order."""
        for leaf in leaves:
            self.append(leaf)

    def root(self) -> bytes:
        """MTH of the leaves so far: the perfect subtrees folded right to left (RFC 9162 §2.1.1)."""
        if not self._stack:
            return EMPTY_ROOT
        result = self._stack[-1]
        for subtree in reversed(self._stack[:-1]):
            result = node_hash(subtree, result)
        return result


def _range_root(leaves: Sequence[bytes], start: int, end: int) -> bytes:
    """MTH(D[start:end]) without copying the slice."""
    builder = TreeBuilder()
    for index in range(start, end):
        builder.append(leaves[index])
    return builder.root()


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of a list of leaf hashes (RFC 9162 §2.1.1); the empty tree's root is SHA-256("")."""
    return _range_root(leaves, 0, len(leaves))


def _check_size(leaves: Sequence[bytes], size: int) -> None:
    """A proof for tree size ``size`` needs at least that many leaf hashes."""
    if size < 0 or size > len(leaves):
        raise ValueError(f"tree size {size} is out of range: the log holds {len(leaves)} leaves")


def inclusion_proof(leaves: Sequence[bytes], index: int, size: int) -> list[bytes]:
    """PATH(index, D[size]) (RFC 9162 §2.1.3.1): the audit path of leaf ``index`` in the tree of ``size``."""
    _check_size(leaves, size)
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is out of range for a tree of size {size}")
    return _path(leaves, index, 0, size)


def _path(leaves: Sequence[bytes], m: int, start: int, end: int) -> list[bytes]:
    """PATH(m, D[start:end]): siblings from the leaf up to the root, leaf's sibling first."""
    n = end - start
    if n == 1:
        return []
    k = _split(n)
    if m < k:  # RFC 9162 §2.1.3.1: PATH(m, D[0:k]) : MTH(D[k:n])
        return [*_path(leaves, m, start, start + k), _range_root(leaves, start + k, end)]
    # PATH(m - k, D[k:n]) : MTH(D[0:k])
    return [*_path(leaves, m - k, start + k, end), _range_root(leaves, start, start + k)]


def consistency_proof(leaves: Sequence[bytes], old_size: int, new_size: int) -> list[bytes]:
    """PROOF(old_size, D[new_size]) (RFC 9162 §2.1.4.1); empty when old_size is 0 or equals new_size."""
    _check_size(leaves, new_size)
    if not 0 <= old_size <= new_size:
        raise ValueError(f"old size {old_size} must be between 0 and the new size {new_size}")
    if old_size in (0, new_size):
        return []
    return _subproof(leaves, old_size, 0, new_size, True)


def _subproof(leaves: Sequence[bytes], m: int, start: int, end: int, whole: bool) -> list[bytes]:
    """SUBPROOF(m, D[start:end], b) (RFC 9162 §2.1.4.1); ``whole`` is b: D[0:m] is the old tree itself."""
    n = end - start
    if m == n:  # the old tree is this subtree: known to the verifier if b, else sent
        return [] if whole else [_range_root(leaves, start, end)]
    k = _split(n)
    if m <= k:  # SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
        return [*_subproof(leaves, m, start, start + k, whole), _range_root(leaves, start + k, end)]
    # SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
    return [*_subproof(leaves, m - k, start + k, end, False), _range_root(leaves, start, start + k)]


def _is_hash(value: object) -> bool:
    """Whether a proof element or root is a 32-byte value (anything else cannot verify)."""
    return isinstance(value, bytes | bytearray) and len(value) == HASH_SIZE


def _climb_right_edge(fn: int, sn: int) -> tuple[int, int]:
    """RFC 9162 §2.1.3.2 step 4b / §2.1.4.2 step 6b.iii: skip the levels where the node is a right edge.

    While LSB(fn) is not set and fn is not 0, right-shift fn and sn (those levels have no sibling).
    """
    while fn and not fn & 1:
        fn, sn = fn >> 1, sn >> 1
    return fn, sn


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """Whether ``proof`` shows leaf hash ``leaf`` at ``index`` in the tree of ``size`` with ``root``.

    Follows RFC 9162 §2.1.3.2; an index outside the tree is a caller error (ValueError), not a failed proof.
    """
    if not 0 <= index < size:  # step 1
        raise ValueError(f"leaf index {index} is out of range for a tree of size {size}")
    if not (_is_hash(leaf) and _is_hash(root) and all(_is_hash(p) for p in proof)):
        return False
    fn, sn, r = index, size - 1, bytes(leaf)  # steps 2 and 3
    for p in proof:  # step 4
        if sn == 0:  # 4a: the proof is longer than the path
            return False
        if fn & 1 or fn == sn:  # 4b: p is a left sibling
            r = node_hash(p, r)
            fn, sn = _climb_right_edge(fn, sn)
        else:  # p is a right sibling
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1  # 4c
    return sn == 0 and r == root  # step 5


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether ``proof`` shows the tree (old_size, old_root) is a prefix of (new_size, new_root).

    RFC 9162 §2.1.4.2, plus the trivial cases it leaves out: equal sizes need equal roots and an empty
    proof; the empty tree (root SHA-256("")) is a prefix of every tree, with an empty proof.
    """
    if not 0 <= old_size <= new_size:
        raise ValueError(f"old size {old_size} must be between 0 and the new size {new_size}")
    if not (_is_hash(old_root) and _is_hash(new_root) and all(_is_hash(p) for p in proof)):
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT
    return _verify_consistency_path(old_size, new_size, old_root, new_root, list(proof))


def _verify_consistency_path(
    first: int, second: int, first_hash: bytes, second_hash: bytes, path: list[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2 steps 1-7 for 0 < first < second, named as the RFC names them."""
    if not path:  # step 1
        return False
    if first & (first - 1) == 0:  # step 2: the old tree is a perfect subtree, its root is implied
        path.insert(0, first_hash)
    fn, sn = first - 1, second - 1  # step 3
    while fn & 1:  # step 4
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]  # step 5
    for c in path[1:]:  # step 6
        if sn == 0:  # 6a
            return False
        if fn & 1 or fn == sn:  # 6b: c is a left sibling in both trees
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            fn, sn = _climb_right_edge(fn, sn)
        else:  # c is a right sibling in the new tree only
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1  # 6c
    return sn == 0 and fr == first_hash and sr == second_hash  # step 7
