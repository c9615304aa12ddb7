"""Supertypes: finite probability laws over numeric values (first paper, Section II).

A player's supertype theta_i is a probability mass function over the public type space Delta;
in a market every type carries a numeric value (a cost parameter, a shortage). A
:class:`Supertype` holds such a law directly as ``values`` and ``probs``; a game turns it into a
pmf over its own type space with :meth:`Supertype.pmf_on`.

Examples
--------
>>> import numpy as np
>>> from stochmech.supertype import Supertype, point_mass
>>> theta = Supertype([1.0, 3.0], [0.25, 0.75])
>>> theta.mean(), theta.var()
(2.5, 0.75)
>>> point_mass(4.0).values.tolist()
[4.0]
>>> theta.sample(np.random.default_rng(0), 3).shape
(3,)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

#: tolerance on ``|sum(probs) - 1|``
PMF_TOLERANCE = 1e-9

__all__ = ["PMF_TOLERANCE", "Supertype", "point_mass"]


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class Supertype:
    """A finite probability law over numeric values.

    Parameters
    ----------
    values : array_like, shape (K,)
        Distinct finite values (any order). Positivity is not required here; a market that needs
        positive values (cost parameters) checks it itself.
    probs : array_like, shape (K,)
        Non-negative finite probabilities summing to one within :data:`PMF_TOLERANCE`.
        Zero entries are allowed (the value is listed but never drawn).

    Raises
    ------
    ValueError
        If the arrays are not 1-D of the same non-zero length, a value is not finite or repeated,
        a probability is negative or not finite, or the probabilities do not sum to one. The
        message names the offending index and value.

    Notes
    -----
    Both arrays are stored as read-only float64 copies. Two supertypes are equal when their
    values and probabilities are equal entry by entry (same order).

    Examples
    --------
    >>> Supertype([2.0, 4.0], [0.5, 0.5]).moment(2)
    10.0
    >>> Supertype([1.0, 2.0], [0.7, 0.2])
    Traceback (most recent call last):
    ...
    ValueError: probs must sum to 1 (within 1e-09), got sum 0.8999999999999999
    """

    values: np.ndarray
    probs: np.ndarray

    def __post_init__(self) -> None:
        arrays = []
        for name in ("values", "probs"):
            try:
                arrays.append(np.array(getattr(self, name), dtype=float, copy=True))
            except (TypeError, ValueError) as err:
                raise ValueError(
                    f"{name} must be an array of numbers, got {getattr(self, name)!r:.80}: {err}"
                ) from None
        values, probs = arrays
        if values.ndim != 1 or probs.ndim != 1:
            raise ValueError(
                f"values and probs must be 1-D, got shapes {values.shape} and {probs.shape}"
            )
        if values.size == 0:
            raise ValueError("values must hold at least one value, got 0")
        if values.shape != probs.shape:
            raise ValueError(
                f"values and probs must have the same length, got {values.size} and {probs.size}"
            )
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise ValueError(f"values[{bad[0]}] = {values[bad[0]]} is not finite")
        bad = np.flatnonzero(~np.isfinite(probs))
        if bad.size:
            raise ValueError(f"probs[{bad[0]}] = {probs[bad[0]]} is not finite")
        bad = np.flatnonzero(probs < 0)
        if bad.size:
            raise ValueError(f"probs[{bad[0]}] = {probs[bad[0]]} is negative")
        total = float(probs.sum())
        if abs(total - 1.0) > PMF_TOLERANCE:
            raise ValueError(f"probs must sum to 1 (within {PMF_TOLERANCE}), got sum {total}")
        order = np.argsort(values, kind="stable")
        dup = np.flatnonzero(np.diff(values[order]) == 0)
        if dup.size:
            j = int(order[dup[0] + 1])
            raise ValueError(f"values[{j}] = {values[j]} is repeated; values must be distinct")
        object.__setattr__(self, "values", _readonly(values))
        object.__setattr__(self, "probs", _readonly(probs))

    # ----- basic protocol -----
    def __len__(self) -> int:
        return int(self.values.size)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Supertype):
            return NotImplemented
        return bool(
            np.array_equal(self.values, other.values) and np.array_equal(self.probs, other.probs)
        )

    def __hash__(self) -> int:
        return hash((self.values.tobytes(), self.probs.tobytes()))

    def __repr__(self) -> str:
        return f"Supertype(values={self.values.tolist()!r}, probs={self.probs.tolist()!r})"

    # ----- moments -----
    @property
    def support(self) -> np.ndarray:
        """The values with positive probability, in stored order.

        Examples
        --------
        >>> Supertype([1.0, 2.0, 3.0], [0.5, 0.0, 0.5]).support.tolist()
        [1.0, 3.0]
        """
        return self.values[self.probs > 0]

    @property
    def is_point_mass(self) -> bool:
        """True when a single value carries all the probability.

        Examples
        --------
        >>> point_mass(4.0).is_point_mass
        True
        """
        return int(np.count_nonzero(self.probs > 0)) == 1

    def expect(self, f: Callable[[np.ndarray], ArrayLike]) -> float:
        """E[f(X)] for a vectorized function ``f`` of the values.

        Values with probability zero are not evaluated, so ``f`` may be undefined there.

        Examples
        --------
        >>> Supertype([1.0, 4.0], [0.5, 0.5]).expect(np.sqrt)
        1.5
        """
        keep = self.probs > 0
        fx = np.asarray(f(self.values[keep]), dtype=float)
        return float(np.dot(self.probs[keep], fx))

    def moment(self, k: float) -> float:
        """Raw moment E[X^k] (negative ``k`` allowed when zero has no probability).

        Examples
        --------
        >>> Supertype([1.0, 2.0], [0.5, 0.5]).moment(-1)
        0.75
        """
        keep = self.probs > 0
        x = self.values[keep]
        if k < 0 and np.any(x == 0):
            raise ValueError(f"moment({k}) is infinite: the value 0 has positive probability")
        return float(np.dot(self.probs[keep], x**k))

    def mean(self) -> float:
        """E[X].

        Examples
        --------
        >>> Supertype([0.0, 2.0], [0.5, 0.5]).mean()
        1.0
        """
        return self.moment(1)

    def var(self) -> float:
        """Var[X] = E[(X - E[X])^2] (computed around the mean, not as E[X^2] - E[X]^2).

        Examples
        --------
        >>> Supertype([0.0, 2.0], [0.5, 0.5]).var()
        1.0
        """
        m = self.mean()
        return self.expect(lambda x: (x - m) ** 2)

    def std(self) -> float:
        """Standard deviation sqrt(Var[X]).

        Examples
        --------
        >>> Supertype([0.0, 2.0], [0.5, 0.5]).std()
        1.0
        """
        return float(np.sqrt(self.var()))

    def map(self, f: Callable[[np.ndarray], ArrayLike]) -> Supertype:
        """The law of f(X) for a one-to-one vectorized ``f`` (e.g. ``lambda x: 1 / x``).

        Examples
        --------
        >>> Supertype([2.0, 4.0], [0.5, 0.5]).map(lambda x: 1 / x).values.tolist()
        [0.5, 0.25]
        """
        return Supertype(np.asarray(f(self.values), dtype=float), self.probs)

    # ----- sampling and embedding -----
    def sample_indices(self, rng: np.random.Generator, size: Any = None) -> np.ndarray:
        """Draw indices into :attr:`values` (inverse-CDF sampling; zero-probability entries never).

        Examples
        --------
        >>> theta = Supertype([1.0, 2.0, 3.0], [0.5, 0.0, 0.5])
        >>> bool(np.all(theta.sample_indices(np.random.default_rng(1), 100) != 1))
        True
        """
        cum = np.cumsum(self.probs)
        u = rng.random(size)
        idx = np.searchsorted(cum, u, side="right")
        last = int(np.flatnonzero(self.probs > 0)[-1])
        return np.minimum(idx, last)

    def sample(self, rng: np.random.Generator, size: Any = None) -> np.ndarray:
        """Draw values (IID) of the given ``size``.

        Examples
        --------
        >>> point_mass(4.0).sample(np.random.default_rng(0), 2).tolist()
        [4.0, 4.0]
        """
        return self.values[self.sample_indices(rng, size)]

    def pmf_on(self, type_values: ArrayLike) -> np.ndarray:
        """This law as a pmf over a type space whose type ``k`` carries ``type_values[k]``.

        Raises
        ------
        ValueError
            If a value with positive probability is not in ``type_values`` (exact match).

        Examples
        --------
        >>> Supertype([3.0, 1.0], [0.25, 0.75]).pmf_on([1.0, 2.0, 3.0]).tolist()
        [0.75, 0.0, 0.25]
        """
        tv = np.asarray(type_values, dtype=float)
        if tv.ndim != 1:
            raise ValueError(f"type_values must be 1-D, got shape {tv.shape}")
        pmf = np.zeros(tv.size)
        for v, p in zip(self.values, self.probs, strict=True):
            hit = np.flatnonzero(tv == v)
            if hit.size == 0:
                if p > 0:
                    raise ValueError(f"value {v} (probability {p}) is not in the type space")
                continue
            pmf[hit[0]] += p
        return pmf


def point_mass(value: float) -> Supertype:
    """The law that puts probability one on ``value``.

    Examples
    --------
    >>> point_mass(4.0).mean()
    4.0
    """
    return Supertype(np.array([float(value)]), np.array([1.0]))
