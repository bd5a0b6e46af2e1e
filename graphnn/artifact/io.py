"""Saving and reading the weights of a loaded export: in an export directory, a `.npz` file or a raw blob."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from graphnn.artifact.model import DTYPES, ExportError, read_manifest, verify_files, write_atomic


def _same_layout(a: dict, b: dict) -> bool:
    key = lambda w: (w["nbytes"], [(t["name"], t["shape"], t["dtype"], t["offset"]) for t in w["tensors"]])  # noqa
    return key(a["weights"]) == key(b["weights"])


def save_weights(model, path: str | None) -> str:
    blob = model.weights_blob()
    path = model.path if path is None else path
    if os.path.isdir(path):
        m = read_manifest(path)
        if not _same_layout(m, model.manifest):
            raise ExportError(f"{path}: an export with another weights layout")
        fname = m["weights"]["file"]
        write_atomic(os.path.join(path, fname), blob)
        m["files"][fname] = {"sha256": hashlib.sha256(blob).hexdigest(), "bytes": len(blob)}
        write_atomic(os.path.join(path, "manifest.json"), json.dumps(m, indent=1).encode())
    elif path.endswith(".npz"):
        np.savez(path, **model.weights())
    else:
        write_atomic(path, blob)
    return path


def read_weights(model, path: str) -> bytes:
    """A weights blob for `model` from `path`, checked against its layout."""
    w = model.manifest["weights"]
    if os.path.isdir(path):
        m = read_manifest(path)
        if not _same_layout(m, model.manifest):
            raise ExportError(f"{path}: an export with another weights layout")
        return verify_files(path, {"files": {m["weights"]["file"]: m["files"][m["weights"]["file"]]}})[
            m["weights"]["file"]
        ]
    if path.endswith(".npz"):
        blob = bytearray(w["nbytes"])
        try:
            with np.load(path, allow_pickle=False) as z:
                for t in w["tensors"]:
                    if t["name"] not in z.files:
                        raise ExportError(f"{path}: no array {t['name']!r}")
                    a = z[t["name"]]
                    if list(a.shape) != t["shape"] or a.dtype != DTYPES[t["dtype"]]:
                        raise ExportError(
                            f"{path}: {t['name']} is {a.dtype.name}{list(a.shape)}, expected {t['dtype']}{t['shape']}"
                        )
                    blob[t["offset"] : t["offset"] + t["nbytes"]] = np.ascontiguousarray(a).tobytes()
        except (OSError, ValueError) as e:
            raise ExportError(f"{path}: cannot read weights ({e})") from None
        return bytes(blob)
    with open(path, "rb") as f:
        blob = f.read(w["nbytes"] + 1)
    if len(blob) != w["nbytes"]:
        raise ExportError(f"{path}: {len(blob)} bytes of weights, expected {w['nbytes']}")
    return blob
