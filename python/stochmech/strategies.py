"""Players' strategies in the repeated two-stage game (first paper, Section II-A to II-D).

A strategy S_i = (sigma_i, pi_i) bids a supertype once (sigma_i, from the player's true
supertype) and a type every day (the bidding policy pi_i). Bids are sealed: on day l a policy may
use the player's own supertype, its own types and bids so far, today's own type, and the public
outcomes (o1, and o2 and the public state omega of earlier days), never the other players'
bids of the same day. The :class:`History` handed to history-dependent policies holds exactly
that information.

Stationary policies (today's bid depends on today's own type only, through a kernel) are
vectorized over days; history-dependent ones are called day by day.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stochmech._validate import integer

__all__ = [
    "FixedBid",
    "History",
    "HistoryDependent",
    "PlayerContext",
    "PublicSignalCollusion",
    "StationaryMisreport",
    "Strategy",
    "SupertypeLie",
    "Truthful",
    "shift_kernel",
]


@dataclass(frozen=True)
class PlayerContext:
    """What a player knows before day 1: its index, its true supertype over its own K_i types
    (``n_types``) and, where types carry numbers, its own type values (shape (K_i,))."""

    player: int
    supertype: np.ndarray
    n_types: int
    type_values: np.ndarray | None = None


@dataclass
class History:
    """The information a sealed-bid policy may use on day l (all of days 1..l-1 plus today's
    own type): own types, own bids, the public first-stage outcome, and the public second-stage
    outcomes and states of earlier days."""

    context: PlayerContext
    supertype_bid: np.ndarray
    o1: Any
    own_types: list[int] = field(default_factory=list)
    own_bids: list[int] = field(default_factory=list)
    outcomes: list[Any] = field(default_factory=list)
    states: list[Any] = field(default_factory=list)

    @property
    def day(self) -> int:
        """Days completed so far (today is day + 1)."""
        return len(self.own_bids)


def _float_array(x: Any, what: str) -> np.ndarray:
    try:
        return np.array(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what} must be an array of numbers, got {x!r:.80}: {err}") from None


def _check_pmf(p: Any, k: int, what: str) -> np.ndarray:
    arr = _float_array(p, what)
    if arr.shape != (k,):
        raise ValueError(f"{what} must be a pmf over {k} types, got shape {arr.shape}")
    bad = np.flatnonzero(~np.isfinite(arr) | (arr < 0))
    if bad.size:
        t = int(bad[0])
        raise ValueError(f"{what}: probability of type {t} is {float(arr[t])!r}")
    with np.errstate(over="ignore", invalid="ignore"):
        total = float(arr.sum())
    if abs(total - 1.0) > 1e-9:
        raise ValueError(f"{what} sums to {total!r}, not 1")
    return arr


def _draw(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF draws; ``cdf`` is (K,) or (L, K) with last entry 1."""
    if cdf.ndim == 1:
        return np.minimum(np.searchsorted(cdf, u, side="right"), cdf.size - 1)
    return np.minimum((u[:, None] >= cdf).sum(axis=1), cdf.shape[1] - 1)


def _cdf(p: np.ndarray) -> np.ndarray:
    c = np.cumsum(p, axis=-1)
    c[..., -1] = 1.0
    return c


class Strategy:
    """Base class of a player's strategy.

    Subclasses override :meth:`supertype_bid` (default: truthful) and either
    :meth:`type_bids` (stationary, vectorized over days) or, with
    ``history_dependent = True``, :meth:`type_bid` (called day by day with a :class:`History`).
    """

    history_dependent: bool = False

    def prepare(self, context: PlayerContext) -> None:
        """Called once before day 1 with the player's private context."""
        self.context = context

    def supertype_bid(self, context: PlayerContext) -> np.ndarray:
        """sigma_i: the supertype declared on day 1 (default: the truth)."""
        return context.supertype

    def type_bids(self, types: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Stationary policy: bids for a batch of the player's own types, (L,) -> (L,)."""
        raise NotImplementedError(f"{type(self).__name__} is not a stationary policy")

    def type_bid(self, own_type: int, history: History, rng: np.random.Generator) -> int:
        """History-dependent policy: today's bid."""
        raise NotImplementedError(f"{type(self).__name__} is not a history-dependent policy")

    def describe(self) -> str:
        return type(self).__name__


class Truthful(Strategy):
    """Bids the true supertype and, every day, the true type (Definition 1)."""

    def type_bids(self, types: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return types

    def describe(self) -> str:
        return "truthful"


class StationaryMisreport(Strategy):
    """Bids type s with probability ``kernel[t, s]`` when the true type is t, every day.

    Parameters
    ----------
    kernel : array_like, shape (K, K)
        Row-stochastic misreporting kernel P(bid = s | type = t).
    supertype_bid : "induced", "truthful" or array_like, default "induced"
        "induced" declares the law the bids actually follow (theta @ kernel), which keeps the
        frequency test quiet; "truthful" declares the true supertype (and is caught by eq. 6
        whenever the kernel changes the marginal).
    """

    def __init__(self, kernel: Any, supertype_bid: Any = "induced") -> None:
        kern = _float_array(kernel, "kernel")
        if kern.ndim != 2 or kern.shape[0] != kern.shape[1]:
            raise ValueError(f"kernel must be a square (K, K) array, got shape {kern.shape}")
        for t in range(kern.shape[0]):
            _check_pmf(kern[t], kern.shape[0], f"kernel row {t}")
        self.kernel = kern
        self._declared = supertype_bid
        self._cdf = _cdf(kern)

    def supertype_bid(self, context: PlayerContext) -> np.ndarray:
        k = context.n_types
        if self.kernel.shape[0] != k:
            raise ValueError(f"kernel is {self.kernel.shape[0]}x{self.kernel.shape[0]}, K = {k}")
        if isinstance(self._declared, str):
            if self._declared == "induced":
                return context.supertype @ self.kernel
            if self._declared == "truthful":
                return context.supertype
            raise ValueError(
                f"supertype_bid must be 'induced', 'truthful' or a pmf, got {self._declared!r}"
            )
        return _check_pmf(self._declared, k, "supertype_bid")

    def type_bids(self, types: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return _draw(self._cdf[types], np.asarray(rng.random(types.shape[0])))

    def describe(self) -> str:
        return "stationary misreport"


def shift_kernel(n_types: int, steps: int, ladder: Any = None) -> np.ndarray:
    """The deterministic kernel that reports type ``t + steps`` (clipped to the type space).

    Types are the player's own, ordered by cost: ``steps > 0`` inflates the reported cost by
    ``steps`` of the player's own levels. ``ladder``, when given, is the increasing sequence of
    type indices to step along (e.g. the levels the player's own supertype lists inside a larger
    type space); types off the ladder are reported as they are.

    Examples
    --------
    >>> shift_kernel(3, 1)
    array([[0., 1., 0.],
           [0., 0., 1.],
           [0., 0., 1.]])
    >>> shift_kernel(4, 1, ladder=[0, 2, 3])[0].tolist()
    [0.0, 0.0, 1.0, 0.0]
    """
    k = integer(n_types, "n_types", minimum=1, maximum=1 << 12)
    steps = integer(steps, "steps")
    rungs = np.arange(k) if ladder is None else np.asarray(ladder, dtype=np.int64)
    if rungs.ndim != 1 or rungs.size == 0 or np.any((rungs < 0) | (rungs >= k)):
        raise ValueError(f"ladder must hold type indices in 0..{k - 1}, got {ladder!r}")
    if np.unique(rungs).size != rungs.size:
        raise ValueError(f"ladder repeats a type index: {ladder!r}")
    kern = np.eye(k)
    step = max(-rungs.size, min(rungs.size, steps))
    target = rungs[np.clip(np.arange(rungs.size) + step, 0, rungs.size - 1)]
    kern[rungs] = 0.0
    kern[rungs, target] = 1.0
    return kern


class SupertypeLie(Strategy):
    """Declares a false supertype and draws type bids that follow it.

    Parameters
    ----------
    bid : array_like, shape (K,)
        The declared supertype.
    coupling : {"quantile", "independent"}, default "quantile"
        How bids follow the declaration: "independent" ignores the true type; "quantile" maps
        the true type's quantile (randomized within its atom) through the declared law, the
        monotone coupling of the two laws.
    """

    def __init__(self, bid: Any, coupling: str = "quantile") -> None:
        if coupling not in ("quantile", "independent"):
            raise ValueError(f"coupling must be 'quantile' or 'independent', got {coupling!r}")
        self.bid = _float_array(bid, "bid")
        self.coupling = coupling

    def supertype_bid(self, context: PlayerContext) -> np.ndarray:
        self.bid = _check_pmf(self.bid, context.n_types, "declared supertype")
        self._bid_cdf = _cdf(self.bid)
        self._true_cdf = _cdf(context.supertype)
        return self.bid

    def type_bids(self, types: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        u = np.asarray(rng.random(types.shape[0]))
        if self.coupling == "quantile":
            lower = np.where(types > 0, self._true_cdf[np.maximum(types - 1, 0)], 0.0)
            upper = self._true_cdf[types]
            u = lower + u * (upper - lower)
        return _draw(self._bid_cdf, u)

    def describe(self) -> str:
        return f"supertype lie ({self.coupling})"


class FixedBid(Strategy):
    """Bids the same type every day (a bankrupting strategy unless the declaration is a point
    mass on it: the frequency test fires every day and the average penalty diverges)."""

    def __init__(self, bid_type: int, supertype_bid: Any = "truthful") -> None:
        self.bid_type = integer(bid_type, "bid_type", minimum=0)
        self._declared = supertype_bid

    def supertype_bid(self, context: PlayerContext) -> np.ndarray:
        if not 0 <= self.bid_type < context.n_types:
            raise ValueError(f"fixed bid {self.bid_type} is outside [0, {context.n_types - 1}]")
        if isinstance(self._declared, str) and self._declared == "truthful":
            return context.supertype
        return _check_pmf(self._declared, context.n_types, "supertype_bid")

    def type_bids(self, types: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.full(types.shape[0], self.bid_type, dtype=np.int64)

    def describe(self) -> str:
        return f"always bids type {self.bid_type}"


class HistoryDependent(Strategy):
    """Any history-dependent policy given as a callable.

    Parameters
    ----------
    policy : callable ``(own_type, history, rng) -> int``
        Today's bid from today's own type and the sealed-bid :class:`History`.
    supertype_bid : "truthful" or array_like, default "truthful"
    """

    history_dependent = True

    def __init__(
        self,
        policy: Callable[[int, History, np.random.Generator], int],
        supertype_bid: Any = "truthful",
        name: str = "history-dependent",
    ) -> None:
        if not callable(policy):
            raise ValueError(f"policy must be callable, got {policy!r}")
        self.policy = policy
        self._declared = supertype_bid
        self.name = name

    def supertype_bid(self, context: PlayerContext) -> np.ndarray:
        if isinstance(self._declared, str) and self._declared == "truthful":
            return context.supertype
        return _check_pmf(self._declared, context.n_types, "supertype_bid")

    def type_bid(self, own_type: int, history: History, rng: np.random.Generator) -> int:
        bid = self.policy(own_type, history, rng)
        return integer(bid, f"the bid of policy {self.name!r} on day {history.day + 1}")

    def describe(self) -> str:
        return self.name


class PublicSignalCollusion(Strategy):
    """Correlates bids with other colluders through the public outcome history.

    Every colluder computes the same public signal ``signal(history) -> int`` from the public
    part of the history (o1, earlier o2 and omega) and bids from ``kernels[signal][own_type]``.
    Sharing the signal function makes the colluders' bids correlated without any private
    communication (collusion through common randomness, Section III-B).

    Parameters
    ----------
    signal : callable ``History -> int``
        Must use only ``history.o1``, ``history.outcomes`` and ``history.states``.
    kernels : array_like, shape (S, K, K)
        One misreporting kernel per signal value.
    supertype_bid : "induced", "truthful" or array_like, default "induced"
        "induced" declares the bid law averaged over a uniform signal.
    """

    history_dependent = True

    def __init__(
        self, signal: Callable[[History], int], kernels: Any, supertype_bid: Any = "induced"
    ) -> None:
        kern = _float_array(kernels, "kernels")
        if kern.ndim != 3 or kern.shape[1] != kern.shape[2]:
            raise ValueError(f"kernels must have shape (S, K, K), got {kern.shape}")
        for s in range(kern.shape[0]):
            for t in range(kern.shape[1]):
                _check_pmf(kern[s, t], kern.shape[1], f"kernel {s} row {t}")
        self.signal = signal
        self.kernels = kern
        self._cdf = _cdf(kern)
        self._declared = supertype_bid

    def supertype_bid(self, context: PlayerContext) -> np.ndarray:
        if isinstance(self._declared, str):
            if self._declared == "induced":
                return context.supertype @ self.kernels.mean(axis=0)
            if self._declared == "truthful":
                return context.supertype
        return _check_pmf(self._declared, context.n_types, "supertype_bid")

    def type_bid(self, own_type: int, history: History, rng: np.random.Generator) -> int:
        s = integer(self.signal(history), f"the public signal on day {history.day + 1}")
        s %= self.kernels.shape[0]
        return int(_draw(self._cdf[s, own_type], np.array([rng.random()]))[0])

    def describe(self) -> str:
        return "public-signal collusion"
