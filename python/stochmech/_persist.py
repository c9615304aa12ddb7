"""Checksummed containers for saved objects, and atomic file writes.

A container is ``magic + version (u32) + payload + CRC-32 of everything before``. The ledger's
payload is its own versioned byte state; markets and simulations carry a pickle (load only
files you trust, as with any pickle).
"""

from __future__ import annotations

import os
import pickle
import struct
import zlib
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def seal(magic: bytes, version: int, payload: bytes) -> bytes:
    """``magic``, ``version`` and ``payload`` followed by their CRC-32."""
    body = magic + struct.pack("<I", version) + payload
    return body + struct.pack("<I", zlib.crc32(body))


def unseal(data: bytes, magic: bytes, version: int, what: str) -> bytes:
    """The payload of a container made by :func:`seal`; any damage is a ``ValueError``."""
    data = bytes(data)
    head = len(magic) + 4
    if len(data) < head + 4 or not data.startswith(magic):
        raise ValueError(f"not a stochmech {what} file (bad magic bytes or too short)")
    (found,) = struct.unpack("<I", data[len(magic) : head])
    if found != version:
        raise ValueError(
            f"{what} file format version {found} is not supported (this stochmech reads "
            f"version {version})"
        )
    body, (crc,) = data[:-4], struct.unpack("<I", data[-4:])
    if zlib.crc32(body) != crc:
        raise ValueError(f"{what} file is corrupted or truncated (checksum mismatch)")
    return body[head:]


def pickle_sealed(obj: Any, magic: bytes, version: int, what: str) -> bytes:
    """``obj`` pickled into a container; an unpicklable part is a ``ValueError``."""
    try:
        payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, AttributeError, TypeError) as err:
        raise ValueError(
            f"this {what} cannot be saved: {err}. Everything in it must be picklable "
            "(define strategies' policies as module-level functions, not lambdas)"
        ) from None
    return seal(magic, version, payload)


def unpickle_sealed(data: bytes, magic: bytes, version: int, cls: type[T], what: str) -> T:
    """The object of :func:`pickle_sealed`, checked to be a ``cls``."""
    obj = pickle.loads(unseal(data, magic, version, what))
    if not isinstance(obj, cls):
        raise ValueError(f"{what} file does not hold a {cls.__name__}")
    return obj


def write_atomically(path: str | os.PathLike[str], data: bytes) -> None:
    """Writes ``data`` to ``path`` through a temporary file and a rename."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
