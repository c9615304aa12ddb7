"""The LQG agents of the layered mechanism (second paper, Section IV)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stochmech.lqg._validation import (
    as_float_array,
    check_int,
    check_nonnegative,
    check_sign,
    frozen,
)

__all__ = ["LQGAgents"]


@dataclass(frozen=True, init=False, eq=False)
class LQGAgents:
    """N scalar LQG agents ``x_i(t+1) = a_i x_i(t) + b_i u_i(t) + w_i(t)``.

    Each agent's one-step utility is ``F_i = q_i x_i^2 + r_i u_i^2`` with ``q_i <= 0`` and
    ``r_i < 0``; ``w_i(t) ~ N(0, sigma_i)`` and ``x_i(0) ~ N(0, zeta_i)`` are independent.
    As in the paper (``w_i ~ N(0, sigma_i)``, ``Sigma = diag(sigma_i)``), ``sigma`` and ``zeta``
    are VARIANCES, not standard deviations. Zero variances are allowed (deterministic agents).

    Parameters
    ----------
    a, b, q, r, sigma, zeta : array_like, shape (N,)
        Finite per-agent parameters; ``q <= 0``, ``r < 0``, ``sigma >= 0``, ``zeta >= 0``.

    Raises
    ------
    ValueError
        On wrong lengths, non-finite entries or violated signs; the message names the value.

    Examples
    --------
    >>> agents = LQGAgents(a=[0.9, 1.0], b=[1.0, -1.0], q=[-1.0, -2.0], r=[-0.5, -0.5],
    ...                    sigma=[0.1, 0.2], zeta=[1.0, 1.0])
    >>> agents.n
    2
    >>> agents.without(0).a.tolist()
    [1.0]
    """

    a: np.ndarray
    b: np.ndarray
    q: np.ndarray
    r: np.ndarray
    sigma: np.ndarray
    zeta: np.ndarray
    n: int = field(repr=False)

    def __init__(self, a: Any, b: Any, q: Any, r: Any, sigma: Any, zeta: Any) -> None:
        arrays = {}
        given = {"a": a, "b": b, "q": q, "r": r, "sigma": sigma, "zeta": zeta}
        for name, value in given.items():
            arrays[name] = as_float_array(name, value, ndim=1)
        n = len(arrays["a"])
        if n < 1:
            raise ValueError("a must describe at least one agent, got length 0")
        for name, arr in arrays.items():
            if len(arr) != n:
                raise ValueError(f"{name} must have length {n} (the length of a), got {len(arr)}")
        check_sign("q", arrays["q"], upper=0.0, strict=False)
        check_sign("r", arrays["r"], upper=0.0, strict=True)
        check_nonnegative("sigma", arrays["sigma"])
        check_nonnegative("zeta", arrays["zeta"])
        for name, arr in arrays.items():
            object.__setattr__(self, name, frozen(arr))
        object.__setattr__(self, "n", n)

    def without(self, agent: int) -> LQGAgents:
        """The same agents with ``agent`` removed (needs at least two agents)."""
        agent = check_int("agent", agent, minimum=0)
        if agent >= self.n:
            raise ValueError(f"agent must be < {self.n}, got {agent}")
        if self.n < 2:
            raise ValueError("cannot remove the only agent")
        keep = np.arange(self.n) != agent
        kept = (v[keep] for v in (self.a, self.b, self.q, self.r, self.sigma, self.zeta))
        return LQGAgents(*kept)

    def input_variances(self, horizon: int) -> np.ndarray:
        """Variances of the layer inputs ``X(s, s)``: row 0 ``zeta``, rows ``1..T-1`` ``sigma``."""
        horizon = check_int("horizon", horizon, minimum=1)
        var = np.empty((horizon, self.n))
        var[0] = self.zeta
        var[1:] = self.sigma
        return var

    def sample_layer_inputs(
        self, horizon: int, rng: np.random.Generator, size: int | None = None
    ) -> np.ndarray:
        """Draw layer inputs: row 0 is ``x(0)``, row ``s >= 1`` is ``w(s-1)``.

        Returns shape (T, N), or (size, T, N) when ``size`` is given.

        Examples
        --------
        >>> import numpy as np
        >>> agents = LQGAgents([1.0], [1.0], [-1.0], [-1.0], [1.0], [1.0])
        >>> agents.sample_layer_inputs(5, np.random.default_rng(0)).shape
        (5, 1)
        """
        std = np.sqrt(self.input_variances(horizon))
        shape = std.shape if size is None else (check_int("size", size, minimum=1), *std.shape)
        return rng.standard_normal(shape) * std
