"""Validation of the mechanism side's arguments, in one place.

Every public entry checks its arguments with these functions, so that a bad argument always
gives a ``ValueError`` that names the argument and the offending value, with one tolerance for
probabilities (:data:`PMF_TOLERANCE`).

Examples
--------
>>> pmf([0.25, 0.75], 2, "supertype").tolist()
[0.25, 0.75]
>>> integer(3.7, "days")
Traceback (most recent call last):
...
ValueError: days must be an integer, got 3.7
>>> player(2, 2)
Traceback (most recent call last):
...
ValueError: player must be in 0..1, got 2
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

__all__ = [
    "PMF_TOLERANCE",
    "check_row_sums",
    "finite",
    "integer",
    "penalty_schedule",
    "penalty_values",
    "player",
    "pmf",
    "pmf_rows",
]

#: how far from one the probabilities of a pmf may sum
PMF_TOLERANCE = 1e-9


def integer(x: Any, what: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """``x`` as an int; rejects booleans, non-integral numbers (3.7) and values out of range.

    Integral floats (``1e6``, ``3.0``) are accepted.
    """
    if isinstance(x, (bool, np.bool_)):
        raise ValueError(f"{what} must be an integer, got {x!r}")
    if isinstance(x, numbers.Integral):
        value = int(x)
    elif isinstance(x, numbers.Real) and math.isfinite(float(x)) and float(x).is_integer():
        value = int(float(x))
    else:
        raise ValueError(f"{what} must be an integer, got {x!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{what} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{what} must be <= {maximum}, got {value}")
    return value


def player(i: Any, n: int, what: str = "player") -> int:
    """A player index in 0..n-1."""
    value = integer(i, what)
    if not 0 <= value < n:
        raise ValueError(f"{what} must be in 0..{n - 1}, got {value}")
    return value


def finite(x: Any, what: str) -> float:
    """``x`` as a finite float."""
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Real):
        raise ValueError(f"{what} must be a finite number, got {x!r}")
    value = float(x)
    if not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {x!r}")
    return value


def pmf(p: Any, k: int, what: str) -> np.ndarray:
    """A pmf over ``k`` types as a float64 copy: finite, non-negative, summing to one."""
    try:
        arr = np.array(p, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what} must be a pmf over {k} types: {err}") from None
    if arr.shape != (k,):
        raise ValueError(f"{what} must be a pmf over {k} types, got shape {arr.shape}")
    bad = np.flatnonzero(~np.isfinite(arr) | (arr < 0))
    if bad.size:
        t = int(bad[0])
        raise ValueError(f"{what}: probability of type {t} is {float(arr[t])!r}")
    with np.errstate(over="ignore", invalid="ignore"):
        total = float(arr.sum())
    if abs(total - 1.0) > PMF_TOLERANCE:
        raise ValueError(f"{what} sums to {total!r}, not 1 (within {PMF_TOLERANCE})")
    return arr


def _row_lengths(x: Any) -> list[int] | None:
    """The lengths of the rows of a sequence of sequences (None if it is not one)."""
    try:
        return [len(row) for row in x]
    except TypeError:
        return None


def pmf_rows(x: Any, shape: tuple[int, int] | None, what: str = "supertype bid") -> np.ndarray:
    """An (n, K) array of pmfs (one row per player) as a float64 copy.

    With ``shape=None`` any non-empty (n, K) array is accepted.
    """
    want = "(n, K)" if shape is None else str(shape)
    try:
        arr = np.array(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        lengths = _row_lengths(x)
        if lengths is not None and len(set(lengths)) > 1:
            raise ValueError(
                f"{what}s must give every player the same number of types here, got {lengths}"
            ) from None
        raise ValueError(f"{what}s must be an {want} array of pmfs: {err}") from None
    if shape is None and (arr.ndim != 2 or 0 in arr.shape):
        raise ValueError(f"{what}s must be a non-empty {want} array of pmfs, got shape {arr.shape}")
    if shape is not None and arr.shape != shape:
        raise ValueError(f"{what}s must have shape {shape}, got {arr.shape}")
    bad = np.argwhere(~np.isfinite(arr) | (arr < 0))
    if bad.size:
        i, t = (int(v) for v in bad[0])
        raise ValueError(
            f"{what} of player {i}: probability of type {t} is {float(arr[i, t])!r}; "
            "probabilities must be finite and >= 0"
        )
    check_row_sums(arr, what)
    return arr


def check_row_sums(theta: np.ndarray, what: str) -> None:
    """Every row of the (n, K) array ``theta`` sums to 1 within :data:`PMF_TOLERANCE`; else a
    ``ValueError`` naming ``what``, the player and the sum."""
    with np.errstate(over="ignore", invalid="ignore"):
        sums = theta.sum(axis=1)
    off = np.flatnonzero(np.abs(sums - 1.0) > PMF_TOLERANCE)
    if off.size:
        i = int(off[0])
        raise ValueError(
            f"{what} of player {i} sums to {float(sums[i])!r}, not 1 (within {PMF_TOLERANCE})"
        )


def penalty_schedule(penalty: Any) -> Any:
    """A penalty schedule J_p: ``None`` gives the default ``PowerPenalty()``; else a callable."""
    if penalty is None:
        from stochmech.ledger import PowerPenalty

        return PowerPenalty()
    if not callable(penalty):
        raise ValueError(
            f"penalty must be a PowerPenalty or a callable of the day array, got {penalty!r}"
        )
    return penalty


def penalty_values(penalty: Any, days: np.ndarray) -> np.ndarray:
    """J_p on a batch of days, checked finite and non-negative before anything is recorded."""
    values = np.asarray(penalty(days.copy()), dtype=np.float64)  # a copy: it may be modified
    if values.shape != days.shape:
        raise ValueError(
            f"the penalty schedule returned shape {values.shape} for {days.shape[0]} days; "
            "it must be vectorized over the day array"
        )
    bad = np.flatnonzero(~np.isfinite(values) | (values < 0))
    if bad.size:
        j = int(bad[0])
        raise ValueError(
            f"the penalty schedule gave J_p({int(days[j])}) = {float(values[j])!r}; "
            "penalties must be finite and >= 0 (eq. 12)"
        )
    return values
