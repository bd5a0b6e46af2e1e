"""Event and Summary messages of TensorBoard's event files (tensorflow/core/util/event.proto, summary.proto),
encoded with the field numbers of those protos."""

from __future__ import annotations

import struct
import zlib

import numpy as np

from .protobuf import bytes_field, double_field, float_field, int_field, packed_doubles

# Event
_WALL_TIME, _STEP, _FILE_VERSION, _SUMMARY, _SESSION_LOG = 1, 2, 3, 5, 7
# Summary.Value
_TAG, _SIMPLE_VALUE, _IMAGE, _HISTO, _TENSOR, _METADATA = 1, 2, 4, 5, 8, 9
_DT_STRING = 7  # tensorflow DataType
_SESSION_START = 1  # SessionLog.SessionStatus


def event(wall_time: float, step: int = 0, summary: bytes | None = None, **other: bytes) -> bytes:
    """An Event: wall_time, step and one of summary / file_version / session_log."""
    out = double_field(_WALL_TIME, wall_time) + int_field(_STEP, step)
    if summary is not None:
        out += bytes_field(_SUMMARY, summary)
    if "file_version" in other:
        out += bytes_field(_FILE_VERSION, other["file_version"])
    if "session_log" in other:
        out += bytes_field(_SESSION_LOG, other["session_log"])
    return out


def session_start() -> bytes:
    """SessionLog{status: START}: TensorBoard drops events of later steps logged before it (purge_step)."""
    return int_field(1, _SESSION_START)


def summary(*values: bytes) -> bytes:
    """A Summary of encoded Summary.Value messages."""
    return b"".join(bytes_field(1, v) for v in values)


def _metadata(plugin: str, content: bytes = b"") -> bytes:
    plugin_data = bytes_field(1, plugin) + (bytes_field(2, content) if content else b"")
    return bytes_field(_METADATA, bytes_field(1, plugin_data))


def scalar_value(tag: str, value: float) -> bytes:
    return bytes_field(_TAG, tag) + float_field(_SIMPLE_VALUE, value)


def text_value(tag: str, text: str) -> bytes:
    """The text plugin's value (PyTorch's tag: tag + '/text_summary'): a 1-element DT_STRING tensor."""
    shape = bytes_field(2, int_field(1, 1))  # TensorShapeProto{dim: [{size: 1}]}
    tensor = int_field(1, _DT_STRING) + bytes_field(2, shape) + bytes_field(8, text)
    return bytes_field(_TAG, tag + "/text_summary") + _metadata("text") + bytes_field(_TENSOR, tensor)


def tensorflow_bins() -> np.ndarray:
    """TensorFlow's default histogram edges: +-1e-12 growing by 10% to 1e20, and 0."""
    pos = 1e-12 * 1.1 ** np.arange(int(np.ceil(np.log(1e32) / np.log(1.1))))
    pos = pos[pos < 1e20]
    return np.concatenate([-pos[::-1], [0.0], pos])


def histogram_value(tag: str, values: np.ndarray, bins="tensorflow", max_bins: int | None = None) -> bytes:
    """A HistogramProto of values: the buckets between the first and last non-empty one."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise ValueError(f"add_histogram {tag!r}: values are empty")
    if not np.isfinite(v).all():
        raise ValueError(f"add_histogram {tag!r}: values contain NaN or inf")
    edges = tensorflow_bins() if isinstance(bins, str) and bins == "tensorflow" else bins
    counts, limits = np.histogram(v, bins=edges)
    if max_bins is not None and len(counts) > max_bins:  # merge neighbours
        k = -(-len(counts) // max_bins)
        pad = (-len(counts)) % k
        counts = np.pad(counts, (0, pad)).reshape(-1, k).sum(axis=1)
        limits = np.concatenate([limits[:-1:k], [limits[-1]]])
    nz = np.nonzero(counts)[0]
    lo, hi = nz[0], nz[-1] + 1
    counts, right = counts[lo:hi], limits[lo + 1 : hi + 1]
    histo = (
        double_field(1, v.min())
        + double_field(2, v.max())
        + double_field(3, v.size)
        + double_field(4, v.sum())
        + double_field(5, np.dot(v, v))
        + packed_doubles(6, right)
        + packed_doubles(7, counts)
    )
    return bytes_field(_TAG, tag) + bytes_field(_HISTO, histo)


def png(hwc: np.ndarray) -> bytes:
    """PNG encoding of a uint8 (H, W, C) array, C in 1 (grey), 3 (RGB), 4 (RGBA)."""
    h, w, c = hwc.shape
    color = {1: 0, 3: 2, 4: 6}[c]
    raw = b"".join(b"\x00" + hwc[y].tobytes() for y in range(h))  # filter type 0 per row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def image_value(tag: str, hwc: np.ndarray) -> bytes:
    """Summary.Image of a uint8 (H, W, C) array."""
    h, w, c = hwc.shape
    img = int_field(1, h) + int_field(2, w) + int_field(3, c) + bytes_field(4, png(hwc))
    return bytes_field(_TAG, tag) + bytes_field(_IMAGE, img)


def _proto_value(v) -> bytes:
    """google.protobuf.Value of a number, string or bool."""
    if isinstance(v, bool):
        return int_field(4, v)
    if isinstance(v, (int, float)):
        return double_field(2, v)
    return bytes_field(3, str(v))


def _hparam_type(values: list) -> int:
    if all(isinstance(x, bool) for x in values):
        return 2  # DATA_TYPE_BOOL
    if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in values):
        return 3  # DATA_TYPE_FLOAT64
    return 1  # DATA_TYPE_STRING


def hparams_values(hparams: dict, metrics: dict, domains: dict | None = None) -> tuple[bytes, bytes, bytes]:
    """The hparams plugin's experiment, session-start and session-end values (HParamsPluginData, version 0)."""
    domains = domains or {}
    infos = b""
    for name, v in hparams.items():
        info = bytes_field(1, name) + int_field(4, _hparam_type([v, *domains.get(name, [])]))
        if name in domains:  # domain_discrete: a ListValue of the allowed values
            info += bytes_field(5, b"".join(bytes_field(1, _proto_value(x)) for x in domains[name]))
        infos += bytes_field(4, info)
    for name in metrics:
        infos += bytes_field(5, bytes_field(1, bytes_field(2, name)))  # MetricInfo{name: MetricName{tag}}
    start = b"".join(bytes_field(1, bytes_field(1, k) + bytes_field(2, _proto_value(v))) for k, v in hparams.items())
    end = int_field(1, 1)  # STATUS_SUCCESS

    def value(tag: str, field: int, payload: bytes) -> bytes:
        return bytes_field(_TAG, "_hparams_/" + tag) + _metadata("hparams", bytes_field(field, payload))

    return value("experiment", 2, infos), value("session_start_info", 3, start), value("session_end_info", 4, end)
