"""Adversarial strategies the audit plays against the mechanism.

* :class:`DaySignal`: common randomness that every player can compute (a hash of the public day
  number), for collusion through the public history;
* :func:`comonotone_collusion`: two players whose bids are as correlated as their declarations
  allow (only the joint test of eq. 9 can see them, and only in small markets: see
  :func:`~stochmech.audit.joint_test_power`);
* :class:`WindowExploit`: lies as much as the frequency window r(l) allows, a non-bankrupting
  history-dependent lie whose gain must vanish in the long run;
* :func:`yesterdays_type`: a policy that bids its previous true type (right marginal, wrong
  timing);
* :func:`quantile_coupling`: the monotone coupling of two pmfs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from stochmech._window import DEFAULT_GAMMA
from stochmech.strategies import History, PlayerContext, PublicSignalCollusion, Strategy

__all__ = [
    "DaySignal",
    "WindowExploit",
    "comonotone_collusion",
    "quantile_coupling",
    "yesterdays_type",
]

_MASK64 = (1 << 64) - 1


def quantile_coupling(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """The monotone coupling of two pmfs: pi(t, s) = |[F(t-1), F(t)] n [G(s-1), G(s)]|.

    Examples
    --------
    >>> quantile_coupling(np.array([0.5, 0.5]), np.array([0.25, 0.75])).tolist()
    [[0.25, 0.25], [0.0, 0.5]]
    """
    f = np.concatenate([[0.0], np.cumsum(rows)])
    g = np.concatenate([[0.0], np.cumsum(cols)])
    f[-1] = g[-1] = 1.0
    lo = np.maximum(f[:-1, None], g[None, :-1])
    hi = np.minimum(f[1:, None], g[None, 1:])
    return np.maximum(hi - lo, 0.0)


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


class DaySignal:
    """Common randomness every player can compute: a hash of today's day number.

    The day number is public, so players who agree on ``salt`` share a uniform draw every day
    without communicating (the paper's collusion through common randomness). The signal takes
    value ``k`` with probability ``probs[k]``. It is a callable ``History -> int`` for
    :class:`~stochmech.strategies.PublicSignalCollusion`.

    Examples
    --------
    >>> signal = DaySignal([0.25, 0.75], salt=7)
    >>> draws = [signal.value(day) for day in range(1, 20_001)]
    >>> round(sum(draws) / len(draws), 2)
    0.75
    """

    def __init__(self, probs: Any, salt: int = 0) -> None:
        p = np.array(probs, dtype=float).reshape(-1)
        if p.size == 0 or not np.all(np.isfinite(p)) or np.any(p < 0):
            raise ValueError(f"signal probabilities must be finite and >= 0, got {probs!r}")
        if abs(p.sum() - 1.0) > 1e-9:
            raise ValueError(f"signal probabilities sum to {float(p.sum())!r}, not 1")
        self.probs = p
        self.salt = int(salt)
        self._cdf = np.cumsum(p)
        self._cdf[-1] = 1.0
        self._key = _splitmix64(self.salt & _MASK64)

    def uniform(self, day: int) -> float:
        """The shared uniform draw of ``day`` (1-based)."""
        return (_splitmix64(self._key ^ int(day)) >> 11) / float(1 << 53)

    def value(self, day: int) -> int:
        """The signal of ``day``."""
        k = int(np.searchsorted(self._cdf, self.uniform(day), side="right"))
        return min(k, self.probs.size - 1)

    def __call__(self, history: History) -> int:
        return self.value(history.day + 1)

    def __repr__(self) -> str:
        return f"DaySignal({self.probs.tolist()}, salt={self.salt})"


def yesterdays_type(own_type: int, history: History, rng: np.random.Generator) -> int:
    """A policy for :class:`~stochmech.strategies.HistoryDependent`: bid yesterday's true type
    (today's on day 1). Its bids have the right law and are independent of the others' bids,
    so no test fires; it only loses the link between bid and type.

    Examples
    --------
    >>> from stochmech.strategies import History, PlayerContext
    >>> ctx = PlayerContext(player=0, supertype=np.array([0.5, 0.5]), n_types=2)
    >>> h = History(context=ctx, supertype_bid=ctx.supertype, o1=0, own_types=[1, 0])
    >>> yesterdays_type(1, h, np.random.default_rng(0))
    0
    """
    return history.own_types[-1] if history.own_types else own_type


def comonotone_collusion(
    player: int, partner: int, declared: Any, partner_declared: Any, salt: int = 0
) -> dict[int, Strategy]:
    """Two players who bid the two halves of one monotone coupling of their declarations,
    read off a shared :class:`DaySignal`, ignoring their true types.

    Each bids exactly by its declaration, so the frequency test (eq. 7) stays quiet, but the
    bids are as correlated as the declarations allow, which the joint test (eq. 9) can see
    (unless one declaration is a point mass). It sees it only when the ring's drift of the joint
    statistic, :func:`~stochmech.audit.ring_drift` (geometrically small in the number of
    players), exceeds the window within the horizon: measured on the ledger with declarations
    (0.5, 0.5), the ring is caught after a few hundred days among 3 players, a few thousand
    among 5, and not within 10^6 days among 10 or more (:func:`~stochmech.audit.joint_test_power`).

    Examples
    --------
    >>> pair = comonotone_collusion(0, 1, [0.5, 0.5], [0.5, 0.5])
    >>> sorted(pair), pair[0].kernels.shape
    ([0, 1], (4, 2, 2))
    """
    a = np.asarray(declared, dtype=float)
    b = np.asarray(partner_declared, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"declarations must be pmfs of the same length, got {a.shape}, {b.shape}")
    k = a.size
    joint = quantile_coupling(a, b).ravel()
    signal = DaySignal(joint, salt=salt)
    mine = np.zeros((k * k, k, k))
    theirs = np.zeros((k * k, k, k))
    for idx in range(k * k):
        mine[idx, :, idx // k] = 1.0
        theirs[idx, :, idx % k] = 1.0
    return {
        int(player): PublicSignalCollusion(signal, mine, supertype_bid=a.copy()),
        int(partner): PublicSignalCollusion(signal, theirs, supertype_bid=b.copy()),
    }


class WindowExploit(Strategy):
    """Lies as much as the frequency window allows: a history-dependent, non-bankrupting lie.

    Every day it bids the type s that maximizes ``advantage[t, s]`` (the per-day gain of
    bidding s with true type t, e.g. C(t, s) - C(s, s)) among the bids that keep every
    running frequency discrepancy of eq. (6) below ``margin * r(l)``; when none does, it bids
    the type that brings the frequencies closest to the declaration. Its frequencies converge
    to the declaration, so it lies on a vanishing fraction of days: it is truthful in the
    sense of Definition 1 when it declares the truth, and its gain must vanish in the long
    run. At a finite horizon it can gain: see :func:`window_deviation_bound`.

    Parameters
    ----------
    advantage : array_like, shape (K, K)
    gamma : float
        The mechanism's window exponent (public).
    margin : float, default 0.9
        Fraction of the window it uses.
    supertype_bid : "truthful" or array_like
    """

    history_dependent = True

    def __init__(
        self,
        advantage: Any,
        gamma: float = DEFAULT_GAMMA,
        margin: float = 0.9,
        supertype_bid: Any = "truthful",
    ) -> None:
        adv = np.array(advantage, dtype=float)
        if adv.ndim != 2 or adv.shape[0] != adv.shape[1] or not np.all(np.isfinite(adv)):
            raise ValueError(f"advantage must be a finite square (K, K) table, got {adv.shape}")
        if not (float(gamma) > 0 and math.isfinite(float(gamma))):
            raise ValueError(f"gamma must be > 0, got {gamma!r}")
        if not 0 < float(margin) <= 1:
            raise ValueError(f"margin must be in (0, 1], got {margin!r}")
        self.advantage = adv
        self.gamma = float(gamma)
        self.margin = float(margin)
        self._declared = supertype_bid

    def prepare(self, context: PlayerContext) -> None:
        super().prepare(context)
        if self.advantage.shape[0] != context.n_types:
            raise ValueError(
                f"advantage is {self.advantage.shape[0]}x{self.advantage.shape[0]}, "
                f"K = {context.n_types}"
            )
        self._counts = np.zeros(context.n_types)
        self._seen = 0

    def supertype_bid(self, context: PlayerContext) -> np.ndarray:
        if isinstance(self._declared, str) and self._declared == "truthful":
            return context.supertype
        return _pmf(self._declared, context.n_types, "supertype_bid")

    def type_bid(self, own_type: int, history: History, rng: np.random.Generator) -> int:
        for b in history.own_bids[self._seen :]:
            self._counts[b] += 1
        self._seen = len(history.own_bids)
        day = history.day + 1
        r = math.sqrt(math.log(2.0 * day ** (1.0 + self.gamma)) / (2.0 * day))
        base = self._counts / day - history.supertype_bid
        k = base.size
        after = np.abs(base[None, :] + np.eye(k) / day).max(axis=1)
        ok = np.flatnonzero(after < self.margin * r)
        if ok.size == 0:
            return int(np.argmin(after))
        gain = self.advantage[own_type, ok]
        best = ok[gain == gain.max()]
        return int(own_type) if own_type in best else int(best[0])

    def describe(self) -> str:
        return f"window exploit (margin {self.margin})"


# ---------------------------------------------------------------------------------------------
# individual rationality, efficiency, budget
# ---------------------------------------------------------------------------------------------


def _pmf(p: Any, k: int, what: str) -> np.ndarray:
    arr = np.array(p, dtype=np.float64)
    if arr.shape != (k,) or not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"{what} must be a pmf over {k} types, got {p!r}")
    if abs(arr.sum() - 1.0) > 1e-9:
        raise ValueError(f"{what} sums to {float(arr.sum())!r}, not 1")
    return arr
