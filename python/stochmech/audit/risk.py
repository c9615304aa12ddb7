"""What a truthful participant risks: the expected penalty of honest bidding over a horizon.

Lemma 1 of the first paper says a truthful player is penalized only finitely often, almost
surely. In expectation the picture differs: on day l the frequency test (eq. 7) flags an honest
player with a small probability, about l^-(1+gamma), but the fine that day is J_p(l), which
grows. :func:`truthful_risk` computes the expected total penalty of a truthful player over days
1..L, day by day:

* **frequency (marginal) test, exact.** An honest player's bid counts N(l) after l days are
  multinomial(l, theta_i). The test fires when ``max_t |N_t(l)/l - theta_i(t)| >= r(l)``,
  evaluated in floating point exactly as the ledger evaluates it (the boundary counts are
  found by evaluating the ledger's own expression, and r(l) is taken from the Rust core on every
  day where rounding could matter). With at most two types of positive probability the event
  is a two-sided binomial tail in N_0 and its probability is exact. With more types it is
  computed exactly from the multinomial up to day ``exact_days`` (independent Poisson counts
  conditioned on their sum, by FFT convolution), and past it as a union of K binomial two-sided
  tails: the sum of their probabilities is an upper bound (reported as ``flag_probability``),
  their maximum a lower bound (``flag_probability_lower``); ``exact`` says whether every day was
  exact.
* **joint-independence test (eq. 9): simulated, then bounded.** With n >= 2 players the joint
  test can also fire. Its extra contribution, ``P(joint test fires and the frequency test does
  not)`` times J_p(l), is estimated on IID truthful bid paths run through the
  :class:`~stochmech.BidLedger` (in chunks of days, so memory stays bounded), with a standard
  error over paths. The whole horizon is simulated when ``days * paths`` is at most
  ``joint_budget`` (default 2e7 path-days, a few seconds); otherwise the first
  ``joint_budget // paths`` days are, and the rest get a rigorous upper bound (below). Every
  day is accounted for: the result's ``joint_coverage`` and ``joint_note`` say which days were
  simulated, which bounded and which proved free of joint flags.

  *The bound.* Given the other players' bids, player i's bids inside a group d_-i are
  Binomial(M_i(d_-i), theta_i(t)) counts J(t, d_-i), so by Hoeffding's inequality
  ``P(|J - theta_i(t) M| >= l r(l) | M = m) <= 2 exp(-2 l^2 r(l)^2 / m)``. Splitting on
  ``M >= c l`` (a binomial count of the group's probability p, bounded by Chernoff's
  ``exp(-l KL(c || p))``) and taking the best c of a grid gives a per-day bound on P(the joint
  test fires); it is summed over the groups of positive probability and over player i's types
  (once with two types, whose two events coincide), capped at 1, and multiplied by J_p(l).
  Past a few thousand days it is negligible for a few groups (p bounded away from 0); with
  many groups (large n) it degrades to ``G K l^-(1+gamma)`` and can be loose.

  *Proved zero.* The joint test cannot fire on a day l when ``r(l) > max_t max(theta_i(t),
  1 - theta_i(t))`` (as ``|J - theta_i(t) M| <= max(theta_i(t), 1 - theta_i(t)) M <= that * l``);
  and it never adds to the frequency test when player i has one type of positive probability
  or the others have only one profile of positive probability (then M = l and h equals f in
  floating point too). Such days or cases are reported as proved, not simulated.

The expectation is carried by rare, large fines: a plain Monte Carlo estimate of the total
penalty with a few thousand paths usually sees none of them and underestimates it, which is why
the frequency test's part is computed exactly.

Examples
--------
>>> risk = truthful_risk([[0.5, 0.5]], 0, 1_000)  # default gamma = 1, J_p(l) = l^1.5
>>> risk.exact, round(risk.expected_penalty / risk.days, 4)
(True, 0.0037)
>>> round(truthful_risk([[0.5, 0.5]], 0, 1_000, gamma=0.5).expected_penalty_per_day, 4)
0.0795
>>> bool(risk.any_flag_after(100) < risk.any_flag_after(10))
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import gammaln
from scipy.stats import binom

from stochmech._validate import integer, penalty_schedule, penalty_values, pmf_rows
from stochmech._window import DEFAULT_GAMMA, window
from stochmech.ledger import BidLedger, PenaltySchedule, PowerPenalty

__all__ = [
    "DEFAULT_JOINT_BUDGET",
    "TruthfulRisk",
    "flag_probabilities",
    "joint_excess_by_day",
    "joint_fire_bound",
    "truthful_risk",
]

# Rounding of numpy's r(l) against the core's differs by a few ulps at most; a boundary count
# whose statistic lies within this relative distance of r(l) is re-decided with the core's r(l).
_SENSITIVE = 1e-12

#: Path-days (``days * paths``) up to which :func:`truthful_risk` simulates the joint test over
#: the whole horizon: 2e7, i.e. 200 paths of 10^5 days, a few seconds with n = 2 or 3 (longer
#: horizons are simulated over their first 10^5 days and bounded after; pass a larger budget
#: to simulate them whole, about 5 s per 2e7 path-days).
DEFAULT_JOINT_BUDGET = 20_000_000

# days per ledger call of the simulation (bounds its memory: a few MB of bids and flags)
_CHUNK = 1 << 17
# relative slack on r(l) in the joint test's bounds, far above the few ulps of rounding of the
# ledger's floating-point statistic
_RSLACK = 1e-9
# with more groups of positive probability than this, the bound does not enumerate them
_MAX_GROUPS = 4096
# grid of the split M >= c l of the bound: c = p + (1 - p) * _SPLIT
_SPLIT = np.linspace(0.0, 1.0, 41)[1:-1]


def _check_supertypes(supertypes: Any) -> np.ndarray:
    return pmf_rows(supertypes, None, "supertype")


def _check_days(days: Any) -> int:
    return integer(days, "days", minimum=1)


def _check_gamma(gamma: Any) -> float:
    try:
        g = float(gamma)
    except (TypeError, ValueError):
        raise ValueError(f"gamma must be a finite number > 0 (eq. 11), got {gamma!r}") from None
    if not (math.isfinite(g) and g > 0):
        raise ValueError(f"gamma must be a finite number > 0 (eq. 11), got {gamma!r}")
    return g


def _dev(counts: np.ndarray, lf: np.ndarray, p: float) -> np.ndarray:
    """``counts/l - p`` in the ledger's floating-point order of operations."""
    return counts.astype(np.float64) / lf - p


def _type_bounds(
    lf: np.ndarray, r: np.ndarray, p: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For one type of probability p: the largest count a with ``|a/l - p| >= r`` on the low
    side and the smallest count b with it on the high side (as the ledger decides it), clipped
    to -1 and l + 1, and a mask of days where the decision is within rounding of r(l)."""
    length = lf.size
    offsets = np.arange(-2, 3)
    hi0 = np.ceil(lf * (p + r)).astype(np.int64)
    lo0 = np.floor(lf * (p - r)).astype(np.int64)
    hi_c = hi0[:, None] + offsets[None, :]
    lo_c = lo0[:, None] + offsets[None, :]
    dh = _dev(hi_c, lf[:, None], p)
    dl = _dev(lo_c, lf[:, None], p)
    up = dh >= r[:, None]
    down = -dl >= r[:, None]
    # the statistic is monotone in the count and the true boundary is within one count of
    # the real-arithmetic one, so the predicate switches exactly once inside the window
    if not (up[:, -1].all() and not up[:, 0].any() and down[:, 0].all()):
        raise AssertionError("boundary count outside the search window")  # pragma: no cover
    if down[:, -1].any():
        raise AssertionError("boundary count outside the search window")  # pragma: no cover
    rows = np.arange(length)
    b = hi_c[rows, (~up).sum(axis=1)]
    a = lo_c[rows, down.sum(axis=1) - 1]
    near = (np.abs(dh - r[:, None]) <= _SENSITIVE * r[:, None]).any(axis=1) | (
        np.abs(-dl - r[:, None]) <= _SENSITIVE * r[:, None]
    ).any(axis=1)
    lmax = lf.astype(np.int64)
    return np.clip(a, -1, lmax + 1), np.clip(b, -1, lmax + 1), near


def _flag_bounds(
    days: np.ndarray, gamma: float, theta_i: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(K, L) arrays a, b: the frequency test flags type t on day l iff N_t <= a or N_t >= b."""
    lf = days.astype(np.float64)
    r = window(days, gamma)
    k = theta_i.size
    a = np.empty((k, days.size), dtype=np.int64)
    b = np.empty((k, days.size), dtype=np.int64)
    near = np.zeros(days.size, dtype=bool)
    for t in range(k):
        a[t], b[t], nt = _type_bounds(lf, r, float(theta_i[t]))
        near |= nt
    if near.any():
        idx = np.flatnonzero(near)
        r_exact = window(days[idx], gamma)
        for t in range(k):
            a[t, idx], b[t, idx], _ = _type_bounds(lf[idx], r_exact, float(theta_i[t]))
    return a, b


def flag_probabilities(
    supertype: Any, days: Any, *, gamma: float = DEFAULT_GAMMA, exact_days: int = 500
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Probability that the frequency test flags an honest player on each given day.

    Parameters
    ----------
    supertype : array_like, shape (K,)
        The player's declared (and true) supertype.
    days : array_like of int
        Days l >= 1.
    gamma : float, default 1.0
        The window's exponent (eq. 11).
    exact_days : int, default 500
        With three or more types of positive probability, days up to this one are computed
        exactly from the multinomial (Poisson conditioning and FFT convolutions, O(K l log l)
        per day); later days get the union bound and the largest single-type tail.

    Returns
    -------
    upper, lower : ndarray
        Upper and lower bounds on P(max_t |N_t(l)/l - theta(t)| >= r(l)) per day; equal (and
        exact) with at most two types of positive probability, and on days <= ``exact_days``.
    exact : bool
        Whether every requested day is exact.

    Examples
    --------
    >>> up, lo, exact = flag_probabilities([0.5, 0.5], [1, 2, 10], gamma=0.5)
    >>> up.round(4).tolist(), exact
    ([0.0, 0.0, 0.002], True)
    >>> float(flag_probabilities([0.5, 0.5], [10])[0][0])  # the default gamma = 1: wider window
    0.0
    """
    theta_i = _check_supertypes(np.atleast_2d(np.asarray(supertype, dtype=np.float64)))
    if theta_i.shape[0] != 1:
        raise ValueError(f"supertype must be one pmf, got shape {np.shape(supertype)}")
    theta_i = theta_i[0]
    d = np.asarray(days)
    if d.ndim != 1 or not np.issubdtype(d.dtype, np.integer) or (d.size and d.min() < 1):
        raise ValueError(f"days must be a 1-D array of integers >= 1, got {days!r:.80}")
    g = _check_gamma(gamma)
    return _flag_probabilities(theta_i, d.astype(np.int64), g, _check_exact_days(exact_days))


def _check_exact_days(exact_days: Any) -> int:
    if isinstance(exact_days, bool) or not isinstance(exact_days, (int, np.integer)):
        raise ValueError(f"exact_days must be an integer >= 0, got {exact_days!r}")
    if exact_days < 0:
        raise ValueError(f"exact_days must be an integer >= 0, got {exact_days!r}")
    return int(exact_days)


def _flag_probabilities(
    theta_i: np.ndarray, days: np.ndarray, gamma: float, exact_days: int = 500
) -> tuple[np.ndarray, np.ndarray, bool]:
    a, b = _flag_bounds(days, gamma, theta_i)
    # a type of probability 0 is never bid and never flagged (|0/l - 0| = 0 < r(l))
    support = np.flatnonzero(theta_i > 0)
    upper = np.zeros(days.size)
    lower = np.zeros(days.size)
    if support.size == 1:
        # a point mass: the count is l every day
        s = int(support[0])
        upper[:] = lower[:] = (b[s] <= days).astype(np.float64)
        return upper, lower, True
    possible = np.zeros(days.size, dtype=bool)
    for t in support:
        possible |= (a[t] >= 0) | (b[t] <= days)
    idx = np.flatnonzero(possible)
    if idx.size == 0:
        return upper, lower, True
    n = days[idx]
    if support.size <= 2:
        # the counts of the support's types add up to l: one binomial count N_s decides
        s = int(support[0])
        big_a = a[s, idx].copy()
        big_b = b[s, idx].copy()
        if support.size == 2:
            u = int(support[1])
            big_a = np.maximum(big_a, n - b[u, idx])
            big_b = np.minimum(big_b, n - a[u, idx])
        p = float(theta_i[s]) / float(theta_i[support].sum())
        prob = binom.cdf(big_a, n, p) + binom.sf(big_b - 1, n, p)
        prob = np.where(big_b <= big_a + 1, 1.0, np.minimum(prob, 1.0))
        upper[idx] = prob
        lower[idx] = prob
        return upper, lower, True
    per_type = np.stack(
        [
            binom.cdf(a[t, idx], n, theta_i[t]) + binom.sf(b[t, idx] - 1, n, theta_i[t])
            for t in support
        ]
    )
    upper[idx] = np.minimum(per_type.sum(axis=0), 1.0)
    lower[idx] = np.minimum(per_type.max(axis=0), 1.0)
    small = np.flatnonzero(days[idx] <= exact_days)
    if small.size:
        cols = idx[small]
        exact = _multinomial_flag(
            theta_i[support], a[support][:, cols], b[support][:, cols], days[cols]
        )
        # the FFT's rounding (about 1e-15) cannot leave the rigorous bounds
        exact = np.clip(exact, lower[cols], upper[cols])
        upper[cols] = exact
        lower[cols] = exact
    return upper, lower, bool(days.max() <= exact_days)


def _multinomial_flag(
    theta: np.ndarray, a: np.ndarray, b: np.ndarray, days: np.ndarray
) -> np.ndarray:
    """P(some N_t <= a_t or N_t >= b_t) for N ~ multinomial(l, theta), day by day.

    The counts of a multinomial are independent Poisson(l theta_t) variables conditioned on
    their sum being l. The flag event splits by the first type t outside its interval
    [a_t + 1, b_t - 1]: types before t inside, type t outside, types after t anything. Each
    piece is a convolution of non-negative Poisson pieces read at l (no cancellation), divided by
    the Poisson(l) pmf at l; the convolutions are taken by FFT (absolute rounding error about
    1e-17 on this scale).
    """
    out = np.empty(days.size)
    k = theta.size
    for j, day in enumerate(days):
        lo = np.maximum(a[:, j] + 1, 0)
        hi = np.minimum(b[:, j] - 1, day)
        if np.any(hi < lo) or lo.sum() > day or hi.sum() < day:
            out[j] = 1.0
            continue
        size = 1 << int(k * day + 1).bit_length()
        counts = np.arange(day + 1, dtype=np.float64)
        inside = np.empty((k, size // 2 + 1), dtype=complex)
        outside = np.empty_like(inside)
        full = np.empty_like(inside)
        for t in range(k):
            mu = day * theta[t]
            pmf = np.exp(counts * math.log(mu) - mu - gammaln(counts + 1.0))
            piece = np.zeros(size)
            piece[: day + 1] = pmf
            full[t] = np.fft.rfft(piece)
            keep = np.zeros(size)
            keep[lo[t] : hi[t] + 1] = pmf[lo[t] : hi[t] + 1]
            inside[t] = np.fft.rfft(keep)
            outside[t] = np.fft.rfft(piece - keep)
        prefix = np.ones(size // 2 + 1, dtype=complex)
        suffix = [np.ones(size // 2 + 1, dtype=complex)]
        for t in range(k - 1, 0, -1):
            suffix.append(suffix[-1] * full[t])
        suffix = suffix[::-1]
        spectrum = np.zeros(size // 2 + 1, dtype=complex)
        for t in range(k):
            spectrum += prefix * outside[t] * suffix[t]
            prefix = prefix * inside[t]
        at_l = math.exp(day * math.log(day) - day - math.lgamma(day + 1.0))
        out[j] = min(max(float(np.fft.irfft(spectrum, size)[day]) / at_l, 0.0), 1.0)
    return out


@dataclass(frozen=True)
class TruthfulRisk:
    """What :func:`truthful_risk` returns: a truthful player's penalty risk over days 1..L.

    Attributes
    ----------
    player, days : int
    gamma : float
    penalty : PowerPenalty or callable
        J_p(l).
    exact : bool
        True when the frequency test's flag probabilities are exact (at most two types of
        positive probability); otherwise ``flag_probability`` is the union bound (an upper
        bound) and ``flag_probability_lower`` the largest single-type tail (a lower bound).
    flag_probability, flag_probability_lower : (L,) float
        P(the frequency test flags the player on day l), upper and lower bounds.
    frequency_penalty, frequency_penalty_lower : float
        sum_l J_p(l) P(flag on day l) from the two bounds.
    joint_excess_penalty, joint_excess_se : float
        Simulated expected extra penalty from the simulated days (1..``joint_days``) where only
        the joint test fires, and its standard error over paths (0 with one player).
    joint_excess_flags : float
        Expected number of such days (simulated).
    joint_days, joint_paths : int
        Days and paths of that simulation (0 when not simulated).
    joint_excess_daily : (L,) float or None
        Per day: the simulated frequency of a joint-only flag on simulated days, the bound
        :func:`joint_fire_bound` on bounded days, 0 on proved days; None when the joint test
        is not included.
    joint_coverage : str
        ``"one player"`` (no joint test), ``"not included"`` (``joint=False`` with n >= 2:
        the joint test's extra risk is NOT counted), ``"proved zero"``, ``"simulated"``
        (every day), or ``"simulated + bounded"`` (days 1..``joint_days`` simulated, the rest
        bounded).
    joint_bounded_days : int
        Days ``joint_days + 1..L`` covered by the bound (0 when none).
    joint_tail_bound, joint_tail_flags : float
        Upper bounds on the expected extra penalty and extra flagged days over the bounded days.
    joint_bound_penalty : float
        A rigorous upper bound on the joint test's expected extra penalty over every day
        1..L (:func:`joint_fire_bound` times J_p(l), summed; 0 when proved zero or not
        included): a check on the simulation, which may see no joint-only flag at all.
    joint_note : str
        A sentence stating the coverage.
    """

    player: int
    days: int
    gamma: float
    penalty: PowerPenalty | PenaltySchedule
    exact: bool
    flag_probability: np.ndarray = field(repr=False)
    flag_probability_lower: np.ndarray = field(repr=False)
    frequency_penalty: float
    frequency_penalty_lower: float
    joint_excess_penalty: float = 0.0
    joint_excess_se: float = 0.0
    joint_excess_flags: float = 0.0
    joint_days: int = 0
    joint_paths: int = 0
    joint_excess_daily: np.ndarray | None = field(default=None, repr=False)
    joint_coverage: str = "one player"
    joint_bounded_days: int = 0
    joint_tail_bound: float = 0.0
    joint_tail_flags: float = 0.0
    joint_note: str = "one player: there is no joint test"
    joint_bound_penalty: float = 0.0

    @property
    def joint_covered_days(self) -> int:
        """Days whose joint-test contribution is accounted for (simulated, bounded or proved
        zero): ``days``, except 0 when ``joint_coverage == "not included"``."""
        return 0 if self.joint_coverage == "not included" else self.days

    @property
    def expected_penalty(self) -> float:
        """Expected total penalty over days 1..L: the frequency test's (an upper bound unless
        ``exact``), plus the joint test's simulated excess and its bound over the bounded days
        (so a conservative figure when ``joint_coverage == "simulated + bounded"``)."""
        return self.frequency_penalty + self.joint_excess_penalty + self.joint_tail_bound

    @property
    def expected_penalty_lower(self) -> float:
        """A lower bound on the expected total penalty (frequency test's lower bound plus the
        simulated joint-test excess; the bounded days add nothing)."""
        return self.frequency_penalty_lower + self.joint_excess_penalty

    @property
    def expected_penalty_per_day(self) -> float:
        """``expected_penalty / days``."""
        return self.expected_penalty / self.days

    @property
    def expected_flags(self) -> float:
        """Expected number of flagged days over 1..L (frequency test's bound plus the joint
        test's simulated excess and its bound over the bounded days)."""
        return float(self.flag_probability.sum()) + self.joint_excess_flags + self.joint_tail_flags

    def any_flag_after(self, day: int) -> float:
        """An upper bound on P(the player is flagged on some day in day+1..L): the union bound
        ``sum_{l > day} P(flag on day l)`` (capped at 1), with ``joint_excess_daily`` added.

        It is a bound, not an exact probability; :meth:`any_flag_after_lower` is a lower bound.
        """
        d = int(day)
        if d < 0:
            raise ValueError(f"day must be >= 0, got {day!r}")
        total = float(self.flag_probability[d:].sum())
        if self.joint_excess_daily is not None:
            total += float(self.joint_excess_daily[d:].sum())
        return min(total, 1.0)

    def any_flag_after_lower(self, day: int) -> float:
        """A lower bound on P(flag on some day in day+1..L): the largest single day's
        frequency-test lower bound."""
        d = int(day)
        if d < 0:
            raise ValueError(f"day must be >= 0, got {day!r}")
        tail = self.flag_probability_lower[d:]
        return float(tail.max()) if tail.size else 0.0

    def cumulative_penalty(self) -> np.ndarray:
        """Expected penalty through each day 1..L (frequency test's bound), (L,)."""
        jp = penalty_values(self.penalty, np.arange(1, self.days + 1, dtype=np.int64))
        return np.cumsum(jp * self.flag_probability)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "player": self.player,
            "days": self.days,
            "gamma": self.gamma,
            "penalty": self.penalty.to_dict()
            if isinstance(self.penalty, PowerPenalty)
            else repr(self.penalty),
            "exact": self.exact,
            "expected_penalty": self.expected_penalty,
            "expected_penalty_lower": self.expected_penalty_lower,
            "expected_penalty_per_day": self.expected_penalty_per_day,
            "expected_flags": self.expected_flags,
            "frequency_penalty": self.frequency_penalty,
            "joint_excess_penalty": self.joint_excess_penalty,
            "joint_excess_se": self.joint_excess_se,
            "joint_days": self.joint_days,
            "joint_paths": self.joint_paths,
            "joint_coverage": self.joint_coverage,
            "joint_covered_days": self.joint_covered_days,
            "joint_bounded_days": self.joint_bounded_days,
            "joint_tail_bound": self.joint_tail_bound,
            "joint_bound_penalty": self.joint_bound_penalty,
            "joint_note": self.joint_note,
            "any_flag_after_100": self.any_flag_after(min(100, self.days)),
        }

    def __str__(self) -> str:
        kind = "exact" if self.exact else "union bound (upper)"
        lines = [
            f"truthful risk of player {self.player} over {self.days} days "
            f"(gamma = {self.gamma:g}, frequency test {kind}):",
            f"  expected penalty {self.expected_penalty:.4g} "
            f"({self.expected_penalty_per_day:.3g} per day), "
            f"expected flagged days {self.expected_flags:.3g}",
            f"  P(any flag after day 100) <= {self.any_flag_after(min(100, self.days)):.3g}",
        ]
        if self.joint_paths:
            lines.append(
                f"  joint test's extra penalty {self.joint_excess_penalty:.4g} "
                f"+- {self.joint_excess_se:.2g} (simulated, {self.joint_paths} paths of "
                f"{self.joint_days} days)"
            )
        if self.joint_coverage != "one player":
            lines.append(f"  joint test: {self.joint_note}")
        return "\n".join(lines)


def _support_structure(theta: np.ndarray, i: int) -> tuple[int, np.ndarray | None, int]:
    """Player i's joint events per group (0, 1 with two types, K' otherwise), the probabilities
    of the groups d_-i of positive probability (None beyond ``_MAX_GROUPS``) and their number."""
    support_i = int(np.count_nonzero(theta[i] > 0))
    events = 0 if support_i <= 1 else (1 if support_i == 2 else support_i)
    others = [theta[j][theta[j] > 0] for j in range(theta.shape[0]) if j != i]
    groups = math.prod(int(o.size) for o in others)
    if groups > _MAX_GROUPS:
        return events, None, groups
    probs = np.ones(1)
    for o in others:
        probs = np.outer(probs, o).ravel()
    return events, probs, groups


def _joint_never_adds(theta: np.ndarray, i: int) -> bool:
    """Whether the joint test provably never flags player i on a day the frequency test does
    not: player i has one type of positive probability (every h is exactly 0), or the others
    have one profile (M = l, M/l = 1.0 and h_i,(t, d_-i) equals f_i,t bit for bit)."""
    events, _, groups = _support_structure(theta, i)
    return events == 0 or groups == 1


def _joint_possible(days: np.ndarray, gamma: float, theta_i: np.ndarray) -> np.ndarray:
    """Days on which the joint test might fire: ``|h| <= max(theta, 1 - theta) M / l`` with
    M <= l, so it cannot when r(l) exceeds that (with a slack for rounding)."""
    support = theta_i[theta_i > 0]
    c = float(np.maximum(support, 1.0 - support).max()) if support.size else 0.0
    return window(days, gamma) * (1.0 - _RSLACK) <= c


def _check_player(player: Any, n: int) -> int:
    """A player index in 0..n-1 (not a bool)."""
    if isinstance(player, bool) or not isinstance(player, (int, np.integer)):
        raise ValueError(f"player must be an integer index, got {player!r}")
    if not 0 <= int(player) < n:
        raise ValueError(f"player {player!r} does not exist (n = {n})")
    return int(player)


def joint_fire_bound(
    supertypes: Any, player: int, days: Any, *, gamma: float = DEFAULT_GAMMA
) -> np.ndarray:
    """An upper bound on P(the joint-independence test flags a truthful player on day l).

    Given the other players' bids, ``J(t, d_-i)`` is Binomial(M, theta_i(t)) with M =
    M_i(d_-i); Hoeffding's inequality bounds a group's two-sided tail by
    ``2 exp(-2 l^2 r(l)^2 / M)``, and the split ``M >= c l`` (Chernoff:
    ``exp(-l KL(c || p))`` with p the group's probability; the best c of a grid, or c = 1)
    removes the dependence on M. The bound is summed over the groups of positive probability
    and player i's types (once with two), capped at 1, and is 0 on days where the joint test
    cannot fire (module notes) and in the cases where it never adds to the frequency test.

    Parameters
    ----------
    supertypes : array_like, shape (n, K)
    player : int
    days : array_like of int
        Days l >= 1.
    gamma : float, default 1.0

    Returns
    -------
    ndarray
        The bound per day.

    Examples
    --------
    >>> b = joint_fire_bound([[0.5, 0.5], [0.5, 0.5]], 0, [10, 1_000, 100_000])
    >>> b[0], bool(b[1] < 1e-3), bool(b[2] < 1e-12)
    (np.float64(0.0), True, True)
    """
    theta = _check_supertypes(supertypes)
    n = theta.shape[0]
    i = _check_player(player, n)
    d = np.asarray(days)
    if d.ndim != 1 or not np.issubdtype(d.dtype, np.integer) or (d.size and d.min() < 1):
        raise ValueError(f"days must be a 1-D array of integers >= 1, got {days!r:.80}")
    return _joint_fire_bound(theta, i, d.astype(np.int64), _check_gamma(gamma))


def _joint_fire_bound(theta: np.ndarray, i: int, days: np.ndarray, gamma: float) -> np.ndarray:
    out = np.zeros(days.size)
    if theta.shape[0] < 2 or _joint_never_adds(theta, i) or days.size == 0:
        return out
    events, probs, groups = _support_structure(theta, i)
    possible = _joint_possible(days, gamma, theta[i])
    for lo in range(0, days.size, 1 << 15):
        sl = slice(lo, lo + (1 << 15))
        lf = days[sl].astype(np.float64)
        r = window(days[sl], gamma) * (1.0 - _RSLACK)
        lr2 = lf * r * r
        plain = 2.0 * np.exp(-2.0 * lr2)  # M <= l: l^-(1+gamma) up to the slack
        if probs is None:
            total = groups * plain
        else:
            values, mult = np.unique(probs, return_counts=True)
            total = np.zeros(lf.size)
            for p, m in zip(values, mult, strict=True):
                best = plain.copy()
                if p < 1.0:
                    c = p + (1.0 - p) * _SPLIT
                    kl = c * np.log(c / p) + (1.0 - c) * np.log((1.0 - c) / (1.0 - p))
                    split = np.exp(-lf[:, None] * kl[None, :]) + 2.0 * np.exp(
                        -2.0 * lr2[:, None] / c[None, :]
                    )
                    best = np.minimum(best, split.min(axis=1))
                total += m * best
        out[sl] = np.minimum(events * total, 1.0)
    out[~possible] = 0.0
    return out


def truthful_risk(
    supertypes: Any,
    player: int,
    days: int,
    *,
    gamma: float = DEFAULT_GAMMA,
    penalty: PowerPenalty | PenaltySchedule | None = None,
    exact_days: int = 500,
    joint: bool = True,
    joint_days: int | None = None,
    paths: int = 200,
    joint_budget: int = DEFAULT_JOINT_BUDGET,
    seed: int = 0,
) -> TruthfulRisk:
    """The expected penalty a truthful player pays over days 1..L (see the module's notes).

    Parameters
    ----------
    supertypes : array_like, shape (n, K)
        Every player's declared supertype (everyone bids truthfully: types are IID draws).
    player : int
        The player whose risk is computed.
    days : int
        Horizon L.
    gamma : float, default 1.0
        The window's exponent (eq. 11).
    penalty : PowerPenalty or callable, optional
        J_p(l) (eq. 12); default ``PowerPenalty()`` (``l**1.5``).
    exact_days : int, default 500
        With three or more types, the days computed exactly (see :func:`flag_probabilities`);
        later days use the union bound, which is within about 1 % of the exact value on the
        supertypes we measured (the types' tail events are nearly disjoint at large l).
    joint : bool, default True
        With n >= 2, account for the joint test's extra contribution (simulated, bounded or
        proved zero, day by day). With False it is not counted, and the result says so.
    joint_days : int, optional
        Days simulated (capped at ``days``); the later days are bounded. Default: every day
        when ``days * paths <= joint_budget``, else the first ``joint_budget // paths``.
    paths : int, default 200
        Paths of the simulation.
    joint_budget : int, default :data:`DEFAULT_JOINT_BUDGET` (2e7 path-days)
        The simulation's size when ``joint_days`` is not given.
    seed : int
        Seed of the simulation.

    Returns
    -------
    TruthfulRisk

    Examples
    --------
    >>> risk = truthful_risk([[0.3, 0.7]], 0, 10_000, gamma=1.0)
    >>> risk.exact, bool(risk.expected_penalty_per_day < 0.01)
    (True, True)
    >>> two = truthful_risk([[0.5, 0.5], [0.5, 0.5]], 0, 2_000, paths=50)
    >>> two.joint_coverage, two.joint_covered_days
    ('simulated', 2000)
    """
    theta = _check_supertypes(supertypes)
    n = theta.shape[0]
    i = _check_player(player, n)
    horizon = _check_days(days)
    g = _check_gamma(gamma)
    schedule = penalty_schedule(penalty)
    day_arr = np.arange(1, horizon + 1, dtype=np.int64)
    jp = penalty_values(schedule, day_arr)
    upper, lower, exact = _flag_probabilities(theta[i], day_arr, g, _check_exact_days(exact_days))
    result: dict[str, Any] = {}
    if n >= 2 and not joint:
        result = {
            "joint_coverage": "not included",
            "joint_note": f"NOT included (joint=False): days 1..{horizon} not covered",
        }
    elif n >= 2:
        if isinstance(paths, bool) or not isinstance(paths, (int, np.integer)) or paths < 2:
            raise ValueError(f"paths must be an integer >= 2, got {paths!r}")
        budget = integer(joint_budget, "joint_budget", minimum=1)
        if joint_days is None:
            sim_days = min(horizon, max(1, budget // int(paths)))
        else:
            sim_days = min(horizon, _check_days(joint_days))
        result = _joint_part(theta, i, horizon, sim_days, int(paths), g, int(seed), jp)
    return TruthfulRisk(
        player=i,
        days=horizon,
        gamma=g,
        penalty=schedule,
        exact=exact,
        flag_probability=upper,
        flag_probability_lower=lower,
        frequency_penalty=float(np.dot(jp, upper)),
        frequency_penalty_lower=float(np.dot(jp, lower)),
        **result,
    )


def _joint_part(
    theta: np.ndarray,
    i: int,
    horizon: int,
    sim_days: int,
    paths: int,
    gamma: float,
    seed: int,
    jp: np.ndarray,
) -> dict[str, Any]:
    """The joint test's fields of :class:`TruthfulRisk` (n >= 2, joint included)."""
    day_arr = np.arange(1, horizon + 1, dtype=np.int64)
    daily = np.zeros(horizon)
    if _joint_never_adds(theta, i):
        return {
            "joint_excess_daily": daily,
            "joint_coverage": "proved zero",
            "joint_note": f"proved zero on days 1..{horizon} (one type of positive probability "
            "for the player, or one profile for the others: the joint test never adds a flag)",
        }
    possible = _joint_possible(day_arr, gamma, theta[i])
    if not possible.any():
        return {
            "joint_excess_daily": daily,
            "joint_coverage": "proved zero",
            "joint_note": f"proved zero on days 1..{horizon} (r(l) exceeds every "
            "max(theta_i(t), 1 - theta_i(t)): the joint test cannot fire)",
        }
    bound = _joint_fire_bound(theta, i, day_arr, gamma)
    whole = float(jp @ bound)
    ((hit_path, hit_day),) = _simulate_excess(theta, [i], sim_days, paths, gamma, seed)
    pen = np.bincount(hit_path, weights=jp[hit_day], minlength=paths)
    cnt = np.bincount(hit_path, minlength=paths).astype(np.float64)
    daily[:sim_days] = np.bincount(hit_day, minlength=sim_days) / paths
    out: dict[str, Any] = {
        "joint_excess_penalty": float(pen.mean()),
        "joint_excess_se": float(pen.std(ddof=1) / math.sqrt(paths)),
        "joint_excess_flags": float(cnt.mean()),
        "joint_days": sim_days,
        "joint_paths": paths,
    }
    out["joint_bound_penalty"] = whole
    if sim_days == horizon:
        out["joint_coverage"] = "simulated"
        out["joint_note"] = (
            f"simulated on every day 1..{horizon} ({paths} paths); rigorous bound on its "
            f"extra penalty {whole:.3g}"
        )
    else:
        later = bound[sim_days:]
        daily[sim_days:] = later
        tail = float(jp[sim_days:] @ later)
        out |= {
            "joint_coverage": "simulated + bounded",
            "joint_bounded_days": horizon - sim_days,
            "joint_tail_bound": tail,
            "joint_tail_flags": float(later.sum()),
            "joint_note": f"simulated on days 1..{sim_days} ({paths} paths), bounded on days "
            f"{sim_days + 1}..{horizon} (Hoeffding/Chernoff bound, extra penalty <= {tail:.3g}, "
            f"included in the expected penalty; bound over every day {whole:.3g})",
        }
    out["joint_excess_daily"] = daily
    return out


def joint_excess_by_day(
    supertypes: Any,
    days: int,
    gamma: float = DEFAULT_GAMMA,
    *,
    joint_days: int | None = None,
    paths: int = 200,
    seed: int = 0,
) -> np.ndarray:
    """Every player's joint-test extra flag probability per day, (n, L): the simulated
    frequency of a day on which the joint test flags the player and the frequency test does
    not, on days 1..``joint_days`` (default: all), and :func:`joint_fire_bound` after; 0 for
    players (or days) where it is proved zero. One simulation serves every player: the paths
    are :func:`truthful_risk`'s with the same seed, size and gamma.

    Examples
    --------
    >>> extra = joint_excess_by_day([[0.5, 0.5], [1.0, 0.0]], 50, paths=4)
    >>> extra.shape, float(extra.sum())
    ((2, 50), 0.0)
    """
    theta = _check_supertypes(supertypes)
    horizon = _check_days(days)
    g = _check_gamma(gamma)
    if isinstance(paths, bool) or not isinstance(paths, (int, np.integer)) or paths < 2:
        raise ValueError(f"paths must be an integer >= 2, got {paths!r}")
    sim_days = horizon if joint_days is None else min(horizon, _check_days(joint_days))
    n = theta.shape[0]
    day_arr = np.arange(1, horizon + 1, dtype=np.int64)
    extra = np.zeros((n, horizon))
    if n < 2:
        return extra
    players = [
        i
        for i in range(n)
        if not _joint_never_adds(theta, i) and _joint_possible(day_arr, g, theta[i]).any()
    ]
    if not players:
        return extra
    found = _simulate_excess(theta, players, sim_days, int(paths), g, int(seed))
    for i, (_, hit_day) in zip(players, found, strict=True):
        extra[i, :sim_days] = np.bincount(hit_day, minlength=sim_days) / int(paths)
        if sim_days < horizon:
            extra[i, sim_days:] = _joint_fire_bound(theta, i, day_arr[sim_days:], g)
    return extra


def sample_truthful_bids(theta: np.ndarray, days: int, rng: np.random.Generator) -> np.ndarray:
    """IID truthful bids: (days, n) types drawn from each row of ``theta``."""
    cdf = np.cumsum(theta, axis=1)
    cdf[:, -1] = 1.0
    u = rng.random((days, theta.shape[0]))
    return np.stack(
        [np.searchsorted(cdf[j], u[:, j], side="right") for j in range(theta.shape[0])], axis=1
    ).clip(0, theta.shape[1] - 1)


def _simulate_excess(
    theta: np.ndarray, players: list[int], days: int, paths: int, gamma: float, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Runs ``paths`` IID truthful paths of ``days`` days through a ledger of every player and
    one of each listed player alone (the frequency test), in chunks of days; for each listed
    player returns the (path, 0-based day) of every day on which the joint test flags it and
    the frequency test does not."""
    rng = np.random.default_rng(seed)
    found: list[tuple[list[np.ndarray], list[np.ndarray]]] = [([], []) for _ in players]
    for k in range(paths):
        full = BidLedger(theta, gamma=gamma)
        alone = [BidLedger(theta[i : i + 1], gamma=gamma) for i in players]
        for start in range(0, days, _CHUNK):
            bids = sample_truthful_bids(theta, min(_CHUNK, days - start), rng)
            flags = full.record(bids).flags
            for slot, i in enumerate(players):
                if not flags[:, i].any():
                    alone[slot].record(bids[:, i : i + 1])
                    continue
                marginal = alone[slot].record(bids[:, i : i + 1]).flags[:, 0]
                idx = np.flatnonzero(flags[:, i] & ~marginal)
                if idx.size:
                    found[slot][0].append(np.full(idx.size, k, dtype=np.int64))
                    found[slot][1].append(idx.astype(np.int64) + start)
    empty = np.zeros(0, dtype=np.int64)
    return [
        (np.concatenate(p) if p else empty, np.concatenate(d) if d else empty) for p, d in found
    ]
