"""Argument checks shared by the LQG modules; every failure is a ``ValueError`` naming the value."""

from __future__ import annotations

from typing import Any

import numpy as np


def as_float_array(name: str, value: Any, *, ndim: int | None = None) -> np.ndarray:
    """Return ``value`` as a new float64 array, rejecting non-numeric or non-finite entries."""
    try:
        raw = np.asarray(value)
        if raw.dtype.kind not in "iufO" or _has_bool(value):  # no str, bytes, bool, complex
            raise TypeError(raw.dtype)
        arr = np.array(raw, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"{name} must be numeric, got {_short(value)}") from exc
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        idx = tuple(int(k) for k in np.argwhere(bad)[0])
        raise ValueError(f"{name} must be finite, got {arr[idx].item()!r} at index {idx}")
    return arr


def _has_bool(value: Any) -> bool:
    """Whether a (nested) list or tuple holds a bool, which numpy would turn into 0 or 1."""
    if isinstance(value, bool | np.bool_):
        return True
    if isinstance(value, list | tuple):
        return any(_has_bool(v) for v in value)
    return False


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def check_number(name: str, value: Any) -> float:
    """Return ``value`` as a finite float; ``ValueError`` naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{name} must be a finite number, got {_short(value)}")
    try:
        out = float(value)
    except OverflowError as exc:
        raise ValueError(f"{name} must be a finite number, got {_short(value)}") from exc
    if not np.isfinite(out):
        raise ValueError(f"{name} must be a finite number, got {_short(value)}")
    return out


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


def check_finite_result(what: str, value: Any, cause: str) -> None:
    """Refuse a non-finite computed result: ``ValueError`` naming the result and its cause.

    ``what`` names the result (e.g. ``"the Riccati matrices"``), ``cause`` the inputs that made
    it overflow (e.g. ``"a, b, q, r over horizon 400"``).
    """
    if isinstance(value, tuple):
        for part in value:
            check_finite_result(what, part, cause)
        return
    arr = np.asarray(value, dtype=np.float64)
    bad = ~np.isfinite(arr)
    if bad.any():
        idx = tuple(int(k) for k in np.argwhere(bad)[0])
        raise ValueError(
            f"{what} would be non-finite ({arr[idx].item()!r} at index {idx}): {cause} are too "
            "large or too close to zero for float64 (rescale them or shorten the horizon)"
        )
