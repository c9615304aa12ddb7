"""Argument checks shared by the LQG modules; every failure is a ``ValueError`` naming the value."""

from __future__ import annotations

from typing import Any

import numpy as np


def as_float_array(name: str, value: Any, *, ndim: int | None = None) -> np.ndarray:
    """Return ``value`` as a new float64 array, rejecting non-numeric or non-finite entries."""
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric, got {value!r}") from exc
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        idx = tuple(int(k) for k in np.argwhere(bad)[0])
        raise ValueError(f"{name} must be finite, got {arr[idx].item()!r} at index {idx}")
    return arr


def check_sign(name: str, arr: np.ndarray, *, upper: float, strict: bool) -> None:
    """Require ``arr < upper`` (strict) or ``arr <= upper`` everywhere."""
    bad = arr >= upper if strict else arr > upper
    if bad.any():
        idx = tuple(int(k) for k in np.argwhere(bad)[0])
        rel = "<" if strict else "<="
        raise ValueError(f"{name} must be {rel} {upper:g}, got {arr[idx].item()!r} at index {idx}")


def check_nonnegative(name: str, arr: np.ndarray) -> None:
    bad = arr < 0
    if bad.any():
        idx = tuple(int(k) for k in np.argwhere(bad)[0])
        raise ValueError(f"{name} must be >= 0, got {arr[idx].item()!r} at index {idx}")


def check_int(name: str, value: Any, *, minimum: int) -> int:
    """Return ``value`` as an int, rejecting bools, non-integers and values below ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def check_shape(name: str, arr: np.ndarray, shape: tuple[int, ...]) -> None:
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")


def frozen(arr: np.ndarray) -> np.ndarray:
    """Mark an array read-only (results and parameter objects are immutable)."""
    arr.setflags(write=False)
    return arr
