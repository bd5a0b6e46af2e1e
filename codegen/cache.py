"""Storage of the compile caches: checked on-disk entries, a byte-bounded LRU of loaded code, per-key locks.

An on-disk entry is one file: a header, then UTF-8 JSON metadata, then the data.

    magic (8 bytes) | format version (u32) | metadata length (u32) | payload length (u64) | sha256 (32 bytes)

The payload is metadata + data; the checksum covers all of it. The metadata names the entry's kind and key, so
a file under the wrong name is caught too. Entries are written to a temporary file in the same folder and
renamed into place: a reader sees a whole entry or none. An entry failing any check is deleted and reported
once (CacheWarning), and the caller rebuilds it; nothing unchecked ever reaches LLVM.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
import tempfile
import threading
import warnings
from collections import OrderedDict

MAGIC = b"GRAPHNN\x00"
FORMAT_VERSION = 1
HEADER = struct.Struct("<8sIIQ32s")


class CacheWarning(RuntimeWarning):
    """A compile-cache entry was damaged (it is rebuilt) or the cache could not be written (code is not cached)."""


class BadEntry(ValueError):
    """An on-disk entry that fails a check; the message says which."""


_warned: set = set()
_warn_lock = threading.Lock()


def warn_once(tag, message: str) -> None:
    """Issue a CacheWarning the first time `tag` is seen in this process."""
    with _warn_lock:
        if tag in _warned:
            return
        _warned.add(tag)
    warnings.warn(message, CacheWarning, stacklevel=3)


def encode_entry(kind: str, key: str, meta: dict, data: bytes) -> bytes:
    """Header + metadata + data of an entry."""
    meta_bytes = json.dumps({**meta, "kind": kind, "key": key}, sort_keys=True).encode()
    payload = meta_bytes + data
    digest = hashlib.sha256(payload).digest()
    return HEADER.pack(MAGIC, FORMAT_VERSION, len(meta_bytes), len(payload), digest) + payload


def decode_entry(blob: bytes, kind: str, key: str) -> tuple:
    """(metadata dict, data) of an entry that passes every check; raises BadEntry otherwise."""
    if not blob:
        raise BadEntry("empty file")
    if len(blob) < HEADER.size:
        raise BadEntry(f"truncated header ({len(blob)} bytes)")
    magic, version, meta_len, size, digest = HEADER.unpack_from(blob)
    if magic != MAGIC:
        raise BadEntry("not a graphnn cache entry (bad magic)")
    if version != FORMAT_VERSION:
        raise BadEntry(f"format version {version}, expected {FORMAT_VERSION}")
    payload = memoryview(blob)[HEADER.size :]
    if len(payload) != size:
        raise BadEntry(f"payload of {len(payload)} bytes, header says {size} (truncated or extended)")
    if meta_len > size:
        raise BadEntry("metadata length exceeds the payload")
    if hashlib.sha256(payload).digest() != digest:
        raise BadEntry("checksum mismatch")
    try:
        meta = json.loads(bytes(payload[:meta_len]).decode("utf-8"))
    except ValueError:  # includes UnicodeDecodeError and JSONDecodeError
        raise BadEntry("metadata is not valid JSON") from None
    if not isinstance(meta, dict) or meta.get("kind") != kind or meta.get("key") != key:
        raise BadEntry(f"metadata does not describe a {kind} entry with this key")
    return meta, bytes(payload[meta_len:])


def read_entry(path: str, kind: str, key: str) -> tuple | None:
    """(metadata, data) of the entry at `path`; None when there is none or it was damaged (then deleted)."""
    try:
        with open(path, "rb") as f:
            blob = f.read()
    except OSError:  # missing or unreadable: a miss (a rebuild replaces it)
        return None
    try:
        return decode_entry(blob, kind, key)
    except BadEntry as e:
        discard(path, str(e))
        return None


def discard(path: str, reason: str) -> None:
    """Delete a damaged entry and say so (once per file and reason)."""
    with contextlib.suppress(OSError):
        os.unlink(path)
    warn_once(
        ("bad", path, reason), f"graphnn: damaged compile-cache entry {path} ({reason}): discarded, the code is rebuilt"
    )


def write_entry(path: str, kind: str, key: str, meta: dict, data: bytes) -> bool:
    """Write an entry atomically; on any failure (disk full, read-only folder...) warn once and return False."""
    folder, tmp = os.path.dirname(path), None
    try:
        blob = encode_entry(kind, key, meta, data)
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
        os.replace(tmp, path)
        tmp = None
        return True
    except Exception as e:  # noqa: BLE001  (a cache that cannot be written must never fail a compile)
        warn_once(
            ("write", folder), f"graphnn: cannot write the compile cache in {folder} ({e}): compiled code is not cached"
        )
        return False
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


class LRUCache:
    """Values by key, least recently used first, bounded by the sum of their `nbytes` (a value stored under
    several keys counts once). Evicting only drops the cache's reference. Not thread-safe: callers lock."""

    def __init__(self, limit: int):
        self.limit = limit
        self.nbytes = 0
        self._entries: OrderedDict = OrderedDict()  # key -> (value, extra)
        self._uses: dict = {}  # id(value) -> number of keys holding it

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key):
        """(value, extra) for key (now the most recently used), or None."""
        hit = self._entries.get(key)
        if hit is not None:
            self._entries.move_to_end(key)
        return hit

    def put(self, key, value, extra=None) -> None:
        old = self._entries.pop(key, None)
        self._entries[key] = (value, extra)
        self._hold(value)
        if old is not None:
            self._release(old[0])
        self._shrink()

    def set_limit(self, limit: int) -> None:
        self.limit = limit
        self._shrink()

    def values(self) -> list:
        return [v for v, _ in self._entries.values()]

    def _hold(self, value) -> None:
        n = self._uses.get(id(value), 0)
        self._uses[id(value)] = n + 1
        if n == 0:
            self.nbytes += value.nbytes

    def _release(self, value) -> None:
        n = self._uses.pop(id(value)) - 1
        if n:
            self._uses[id(value)] = n
        else:
            self.nbytes -= value.nbytes

    def _shrink(self) -> None:
        while self.nbytes > self.limit and self._entries:
            _, (value, _) = self._entries.popitem(last=False)
            self._release(value)


class KeyLocks:
    """A lock per key, kept while in use: threads asking for one key take turns, other keys never wait."""

    def __init__(self):
        self._guard = threading.Lock()
        self._locks: dict = {}  # key -> [lock, threads using it]

    @contextlib.contextmanager
    def hold(self, key):
        with self._guard:
            entry = self._locks.setdefault(key, [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._guard:
                entry[1] -= 1
                if not entry[1]:
                    del self._locks[key]

    def __len__(self) -> int:
        return len(self._locks)
