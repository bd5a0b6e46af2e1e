"""The protobuf wire format, by hand: just what TensorBoard's Event / Summary messages need, and a decoder."""

from __future__ import annotations

import struct


def varint(n: int) -> bytes:
    """Base-128 varint; negative int64 values take ten bytes (two's complement), as protobuf writes them."""
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return varint(field << 3 | wire)


def int_field(field: int, n: int) -> bytes:
    """An int32/int64/enum/bool field (wire type 0)."""
    return _key(field, 0) + varint(int(n))


def double_field(field: int, x: float) -> bytes:
    return _key(field, 1) + struct.pack("<d", float(x))


def float_field(field: int, x: float) -> bytes:
    return _key(field, 5) + struct.pack("<f", float(x))


def bytes_field(field: int, data: bytes | str) -> bytes:
    """A string, bytes or embedded message field (wire type 2)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return _key(field, 2) + varint(len(data)) + data


def packed_doubles(field: int, xs) -> bytes:
    return bytes_field(field, struct.pack(f"<{len(xs)}d", *map(float, xs)))


def packed_floats(field: int, xs) -> bytes:
    return bytes_field(field, struct.pack(f"<{len(xs)}f", *map(float, xs)))


def _read_varint(buf: bytes, i: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def decode(buf: bytes) -> dict[int, list]:
    """Fields of one message: {field number: [raw values]} (ints for varints, bytes for length-delimited,
    floats for fixed64 (as double) and fixed32 (as float)). Nested messages stay bytes: decode them again."""
    fields: dict[int, list] = {}
    i = 0
    while i < len(buf):
        key, i = _read_varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            v, i = _read_varint(buf, i)
        elif wire == 1:
            (v,), i = struct.unpack_from("<d", buf, i), i + 8
        elif wire == 2:
            n, i = _read_varint(buf, i)
            v, i = bytes(buf[i : i + n]), i + n
        elif wire == 5:
            (v,), i = struct.unpack_from("<f", buf, i), i + 4
        else:
            raise ValueError(f"protobuf decode: unsupported wire type {wire} of field {field}")
        fields.setdefault(field, []).append(v)
    return fields
