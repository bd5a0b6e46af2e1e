"""TFRecord framing of TensorBoard event files: length, masked CRC-32C of the length, data, masked CRC of data."""

from __future__ import annotations

import struct


def _crc32c_table() -> list[int]:
    poly = 0x82F63B78  # Castagnoli, bit-reversed
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of data."""
    crc = 0xFFFFFFFF
    table = _TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    """TFRecord's masked CRC: the CRC rotated right by 15 bits plus a constant (mod 2**32)."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame(data: bytes) -> bytes:
    """One TFRecord: data with its length and both checksums."""
    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", masked_crc(header)) + data + struct.pack("<I", masked_crc(data))


class RecordError(ValueError):
    """A TFRecord file is truncated or a checksum does not match."""


def read_records(path: str) -> list[bytes]:
    """The records of a TFRecord file, checking both CRCs of each."""
    with open(path, "rb") as f:
        buf = f.read()
    out, i = [], 0
    while i < len(buf):
        if i + 12 > len(buf):
            raise RecordError(f"{path}: truncated record header at byte {i}")
        header = buf[i : i + 8]
        (n,) = struct.unpack("<Q", header)
        (hcrc,) = struct.unpack_from("<I", buf, i + 8)
        if hcrc != masked_crc(header):
            raise RecordError(f"{path}: length CRC mismatch at byte {i}")
        data = buf[i + 12 : i + 12 + n]
        if len(data) != n or i + 16 + n > len(buf):
            raise RecordError(f"{path}: truncated record at byte {i}")
        (dcrc,) = struct.unpack_from("<I", buf, i + 12 + n)
        if dcrc != masked_crc(data):
            raise RecordError(f"{path}: data CRC mismatch at byte {i}")
        out.append(data)
        i += 16 + n
    return out
