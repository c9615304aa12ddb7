"""The container of saved objects (see ``docs/file-format.md``) and atomic, durable writes.

A container is::

    magic                 bytes, names the kind of object ("STOCHMECH-MARKET\\n", ...)
    version               u32 little-endian (2)
    header length         u64 little-endian
    header                UTF-8 JSON object: {"kind", "stochmech", "arrays", "state"}
    arrays                raw little-endian array bytes, one after another, in header order
    SHA-256               32 bytes, of everything before

Loading never executes code: the header is plain JSON (no NaN, no infinity), every array is
raw bytes of a dtype from a short list of numeric dtypes, and the objects are rebuilt by the
loaders of ``stochmech._state`` from that data alone. Every field is checked: a damaged,
truncated, foreign, older or inconsistent file raises ``ValueError`` naming what is wrong.
Version 1 files (a pickle under a CRC-32) are refused without being unpickled.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FORMAT_VERSION", "Packer", "read_container", "write_atomically", "write_container"]

#: version of the container written by this stochmech (version 1 held a pickle)
FORMAT_VERSION = 2
_DIGEST = 32
#: dtypes an array in a container may have (little-endian, numeric, no objects)
_DTYPES = frozenset(["|b1", "|u1", "|i1", "<u2", "<i2", "<u4", "<i4", "<u8", "<i8", "<f4", "<f8"])
#: largest header accepted (a header holds metadata only; arrays live outside it)
_MAX_HEADER = 1 << 26
_MAX_NDIM = 32


class Packer:
    """Collects the arrays of a container while the JSON state that refers to them is built."""

    def __init__(self) -> None:
        self.arrays: list[np.ndarray] = []
        #: objects the format cannot store (user-defined games, penalties, strategies), by
        #: role; they must be supplied again when loading (in-process copies pass them along)
        self.supplied: dict[str, Any] = {}

    def array(self, value: Any, what: str) -> dict[str, int]:
        """Stores ``value`` (a numeric array) and returns the reference ``{"array": index}``."""
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf" or arr.dtype.itemsize > 8:
            raise ValueError(f"{what} is an array of dtype {arr.dtype}, which cannot be saved")
        arr = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<"))
        self.arrays.append(arr)
        return {"array": len(self.arrays) - 1}


def write_container(magic: bytes, kind: str, state: Any, packer: Packer) -> bytes:
    """The bytes of a container holding ``state`` (JSON-able) and ``packer``'s arrays."""
    meta = []
    for arr in packer.arrays:
        meta.append({"dtype": arr.dtype.str, "shape": list(arr.shape), "nbytes": arr.nbytes})
    from stochmech._core import __version__

    header = {"kind": kind, "stochmech": __version__, "arrays": meta, "state": state}
    try:
        text = json.dumps(header, allow_nan=False, separators=(",", ":")).encode()
    except (ValueError, TypeError) as err:  # a non-finite float or an object left in the state
        raise ValueError(f"this {kind} cannot be saved: {err}") from None
    parts = [magic, struct.pack("<IQ", FORMAT_VERSION, len(text)), text]
    parts.extend(arr.tobytes() for arr in packer.arrays)
    body = b"".join(parts)
    return body + hashlib.sha256(body).digest()


def _refuse_constant(name: str) -> float:
    raise ValueError(f"the header holds {name}, which a file of this version never does")


def read_container(data: Any, magic: bytes, kind: str) -> tuple[Any, list[np.ndarray]]:
    """The state and arrays of a container made by :func:`write_container`.

    Raises ``ValueError`` naming the problem for anything but an intact container of ``kind``.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    data = bytes(data)
    fixed = len(magic) + 12
    if not data.startswith(magic):
        if len(data) < len(magic) and magic.startswith(data):
            raise ValueError(f"{kind} file is truncated ({len(data)} bytes)")
        raise ValueError(f"not a stochmech {kind} file (the magic bytes differ)")
    if len(data) < len(magic) + 4:
        raise ValueError(f"{kind} file is truncated ({len(data)} bytes)")
    (version,) = struct.unpack("<I", data[len(magic) : len(magic) + 4])
    if version != FORMAT_VERSION:
        if version == 1:
            raise ValueError(
                f"{kind} file format version 1 is not supported: it holds a pickle, which "
                "could run code when loaded, so it is never read; this stochmech reads version "
                f"{FORMAT_VERSION} (re-create the {kind} with this version)"
            )
        raise ValueError(
            f"{kind} file format version {version} is not supported (this stochmech reads "
            f"version {FORMAT_VERSION})"
        )
    if len(data) < fixed + _DIGEST:
        raise ValueError(f"{kind} file is truncated ({len(data)} bytes)")
    body, digest = data[:-_DIGEST], data[-_DIGEST:]
    if hashlib.sha256(body).digest() != digest:
        raise ValueError(f"{kind} file is corrupted or truncated (SHA-256 mismatch)")
    (header_len,) = struct.unpack("<Q", data[len(magic) + 4 : fixed])
    if header_len > min(_MAX_HEADER, len(body) - fixed):
        raise ValueError(f"{kind} file header length {header_len} exceeds the file")
    try:
        header = json.loads(
            body[fixed : fixed + header_len].decode("utf-8"), parse_constant=_refuse_constant
        )
    except (ValueError, RecursionError) as err:
        raise ValueError(f"{kind} file header is not valid JSON: {err}") from None
    if not isinstance(header, dict) or set(header) != {"kind", "stochmech", "arrays", "state"}:
        raise ValueError(f"{kind} file header does not have the fields of version {version}")
    if header["kind"] != kind:
        raise ValueError(f"the file holds a {header['kind']!r}, not a {kind!r}")
    arrays = _read_arrays(header["arrays"], body, fixed + header_len, kind)
    return header["state"], arrays


def _read_arrays(meta: Any, body: bytes, start: int, kind: str) -> list[np.ndarray]:
    if not isinstance(meta, list):
        raise ValueError(f"{kind} file header: 'arrays' is not a list")
    arrays = []
    offset = start
    for j, entry in enumerate(meta):
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "nbytes"}:
            raise ValueError(f"{kind} file header: array {j} is not described correctly")
        dtype, shape, nbytes = entry["dtype"], entry["shape"], entry["nbytes"]
        if dtype not in _DTYPES:
            raise ValueError(f"{kind} file: array {j} has the unsupported dtype {dtype!r}")
        if (
            not isinstance(shape, list)
            or len(shape) > _MAX_NDIM
            or not all(type(s) is int and s >= 0 for s in shape)
        ):
            raise ValueError(f"{kind} file: array {j} has the invalid shape {shape!r}")
        itemsize = np.dtype(dtype).itemsize
        if type(nbytes) is not int or nbytes != math.prod(shape) * itemsize:
            raise ValueError(
                f"{kind} file: array {j} declares {nbytes!r} bytes for shape {shape} of {dtype}"
            )
        if offset + nbytes > len(body):
            raise ValueError(f"{kind} file is truncated (array {j} runs past the end)")
        arr = np.frombuffer(body, dtype=np.dtype(dtype), count=nbytes // itemsize, offset=offset)
        arrays.append(arr.reshape(shape).astype(np.dtype(dtype).newbyteorder("="), copy=True))
        offset += nbytes
    if offset != len(body):
        raise ValueError(f"{kind} file has {len(body) - offset} unexpected bytes after its arrays")
    return arrays


def write_atomically(path: str | os.PathLike[str], data: bytes) -> None:
    """Writes ``data`` to ``path`` atomically and durably.

    The bytes go to a new uniquely named temporary file in the target folder, which is flushed
    to disk (``fsync``) and renamed over ``path`` (``os.replace``, atomic on POSIX and
    Windows); the folder is then flushed so that the rename itself survives a crash. Readers
    and concurrent writers only ever see a complete old or a complete new file; if anything
    fails (or the save is interrupted), the previous file is intact and the temporary file is
    removed. Errors of the destination (a folder, a missing parent, a parent that is a file)
    raise ``ValueError`` naming the path.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    target = Path(path)
    folder = target.parent
    if target.is_dir():
        raise ValueError(f"cannot save to {str(target)!r}: it is a folder")
    if not folder.is_dir():
        raise ValueError(f"cannot save to {str(target)!r}: folder {str(folder)!r} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        tmp = ""
        _fsync_folder(folder)
    finally:
        if tmp:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _fsync_folder(folder: Path) -> None:
    """Flushes a folder's entries to disk (where the platform allows opening folders)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # Windows cannot open folders; its rename is durable on its own
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def read_file(path: str | os.PathLike[str], kind: str) -> bytes:
    """The bytes of ``path``; a missing or unreadable path is a ``ValueError`` naming it."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise ValueError(f"cannot read {kind} file {str(path)!r}: {err.strerror}") from None
