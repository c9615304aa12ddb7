"""The detection window r(l) of eq. (11): one definition, computed by the Rust core.

``stochmech.window`` is the one name of r(l) in the package.
"""

from __future__ import annotations

from typing import Any, overload

import numpy as np

from stochmech import _core
from stochmech._validate import finite, integer

__all__ = ["DEFAULT_GAMMA", "window"]

#: The default window exponent gamma of eq. (11), shared by every function that takes one.
#: gamma = 1 rather than the earlier default 0.5: with the default penalty J_p(l) = l^1.5 a
#: truthful player's expected penalty per day then vanishes with the horizon (it needs
#: 1 < exponent < 1 + gamma); see docs/modelling.md ("Defaults: gamma = 1, exponent 1.5").
DEFAULT_GAMMA = 1.0


@overload
def window(day: int, gamma: float = DEFAULT_GAMMA) -> float: ...
@overload
def window(day: np.ndarray, gamma: float = DEFAULT_GAMMA) -> np.ndarray: ...
def window(day: Any, gamma: float = DEFAULT_GAMMA) -> float | np.ndarray:
    """Detection window r(l) = sqrt(ln(2 l^(1+gamma)) / (2 l)) of eq. (11), for days l >= 1.

    ``day`` is one day (an integer; returns a float) or a numpy array of days (returns a
    float64 array of the same shape, computed in one call to the Rust core).

    Examples
    --------
    >>> round(window(1), 6)
    0.588705
    >>> window(np.array([1, 2, 100])).round(4)
    array([0.5887, 0.721 , 0.2225])
    """
    g = finite(gamma, "gamma")
    if not g > 0:
        raise ValueError(f"gamma must be a finite number > 0 (eq. 11), got {gamma!r}")
    if not isinstance(day, np.ndarray) or day.ndim == 0:
        one = day.item() if isinstance(day, np.ndarray) else day
        return float(_core.window(integer(one, "day", minimum=1, maximum=1 << 53), g))
    arr = day
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if (
            not np.issubdtype(arr.dtype, np.floating)
            or not np.all(np.isfinite(arr))
            or np.any(arr != np.round(arr))
        ):
            raise ValueError(f"day must hold integers, got {arr.ravel()[:5]!r}")
    if arr.size and (arr.max() > 1 << 53):
        raise ValueError(f"day must be <= 2^53, got {arr.max()!r}")
    flat = np.ascontiguousarray(arr, dtype=np.int64).ravel()
    return _core.window_array(flat, g).reshape(arr.shape)
