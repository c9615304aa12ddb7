"""Coalitions: joint deviations of a group of players, audited as a group, and the joint test's
power.

Theorem 1 is about unilateral deviations: one player lies while the others are truthful. A
group of players can also coordinate, without private messages, through common randomness
(a public signal, :class:`~stochmech.audit.DaySignal`): they can bid comonotone types or share
one lie kernel. Such bids can follow every member's declaration (the frequency test of eq. 7
stays quiet) while being correlated across members, which only the joint-independence test of
eq. (9) can see.

* :func:`coalition_audit` plays a coalition's strategies against the all-truthful profile on
  common random numbers and reports the coalition's total gain per day (with a batch-means
  standard error), each member's gain, and when the ledger caught each member; for stationary
  coalitions (one shared :class:`~stochmech.audit.DaySignal` and one kernel per signal value)
  it adds the exact long-run gain before penalties (:func:`coalition_gain_exact`) and the drift
  of the joint statistic, hence the expected-drift detection day.
* :func:`joint_test_power` measures, on the :class:`~stochmech.BidLedger` directly, when a
  2-player comonotone ring is caught among n players, beside the expected-drift prediction.
* :func:`coverage_warning` is the text every audit and run report shows: what is covered
  (unilateral deviations) and where the joint test has no power at the horizon.

Why the joint test loses its power as n grows: a ring of two players whose bids are coupled by
pi shifts the joint statistic of eq. (8) by
``h = prod_{k outside the ring} theta_k(d_k) * (pi(d_i, d_j) - theta_i(d_i) theta_j(d_j))``,
at most ``max_t theta(t)^(n-2) * max |pi - theta_i x theta_j|``: it falls geometrically with n
while the window r(l) falls only like sqrt(ln l / l), so the detection day grows like
``max_t theta(t)^(-2(n-2))``, and beyond K^(n-1) >> L days each profile group is seen about once.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stochmech._window import DEFAULT_GAMMA
from stochmech.audit.adversaries import DaySignal, quantile_coupling
from stochmech.audit.bounds import _state_law, mechanism_for
from stochmech.audit.calibrate import detection_day
from stochmech.audit.checks import CatchTimes, batch_means, catch_times
from stochmech.audit.risk import _check_supertypes, sample_truthful_bids
from stochmech.games.base import TwoStageGame
from stochmech.ledger import BidLedger
from stochmech.mechanism import DNBEMechanism, check_supertypes
from stochmech.simulation import simulate
from stochmech.strategies import PublicSignalCollusion, Strategy, Truthful

__all__ = [
    "CoalitionAudit",
    "JointTestPower",
    "coalition_audit",
    "coalition_gain_exact",
    "coverage_warning",
    "joint_drift",
    "joint_test_power",
    "ring_drift",
]

_MAX_ENUMERATION = 200_000


def joint_drift(supertypes: Any, members: Sequence[int], coupling: Any) -> float:
    """The joint statistic's drift max_{i, d} |h_i,d| (eq. 8) when ``members`` bid by the
    joint law ``coupling`` (shape (K,) * len(members)) and everyone else bids independently by
    its declaration ``supertypes[k]``; the members' marginals are their declarations.

    Computed on the dense law over Delta^n (small n only); :func:`ring_drift` gives the closed
    form for two members.

    Examples
    --------
    >>> pi = quantile_coupling(np.array([0.5, 0.5]), np.array([0.5, 0.5]))
    >>> joint_drift([[0.5, 0.5]] * 3, [0, 1], pi)
    0.125
    """
    theta = _check_supertypes(supertypes)
    n, k = theta.shape
    idx = [int(m) for m in members]
    if len(set(idx)) != len(idx) or any(not 0 <= m < n for m in idx):
        raise ValueError(f"members must be distinct players of 0..{n - 1}, got {members!r}")
    pi = np.asarray(coupling, dtype=float)
    if pi.shape != (k,) * len(idx):
        raise ValueError(f"coupling must have shape {(k,) * len(idx)}, got {pi.shape}")
    if k**n > _MAX_ENUMERATION:
        raise ValueError(f"K^n = {k**n} profiles is too many for the dense law")
    law = pi
    order = list(idx)
    for j in range(n):
        if j not in idx:
            law = np.multiply.outer(law, theta[j])
            order.append(j)
    law = np.moveaxis(law, list(range(n)), order)
    worst = 0.0
    for i in range(n):
        m = law.sum(axis=i, keepdims=True)
        shape = [1] * n
        shape[i] = k
        h = law - theta[i].reshape(shape) * m
        worst = max(worst, float(np.abs(h).max()))
    return round(worst, 15)


def ring_drift(n_players: int, supertype: Any) -> float:
    """Closed form of the joint drift of a 2-player comonotone ring among ``n_players``
    players who all declare ``supertype``: ``max_t theta(t)^(n-2) * max |pi - theta x theta|``
    with pi the quantile coupling.

    Examples
    --------
    >>> ring_drift(3, [0.5, 0.5]), ring_drift(10, [0.5, 0.5])
    (0.125, 0.0009765625)
    """
    theta = np.asarray(supertype, dtype=float)
    n = int(n_players)
    if n < 2:
        raise ValueError(f"a ring needs n_players >= 2, got {n_players!r}")
    pi = quantile_coupling(theta, theta)
    gap = np.abs(pi - np.outer(theta, theta))
    # h_i,d = prod_{others} theta(d_k) * (pi - theta x theta)(d_i, d_j): maximize each factor
    return float(theta.max() ** (n - 2) * gap.max())


@dataclass(frozen=True)
class CoalitionAudit:
    """What :func:`coalition_audit` returns (gains are per day, against all truthful on the
    same random numbers).

    Attributes
    ----------
    members : tuple of int
    days, seed : int
    total_gain, total_gain_se : float
        The coalition's summed utility gain per day and its batch-means standard error.
    member_gains : (m,) float
    catch : list of CatchTimes
        When the ledger caught each member.
    exact_gain : float or None
        Exact long-run total gain per day before penalties (stationary coalitions only).
    drift : float or None
        Largest joint (or frequency) statistic drift the coalition's bids cause; the ledger
        flags them from about ``detection_day`` on (0 drift: never).
    detection_day : int or None
        Expected-drift detection day (:func:`~stochmech.audit.detection_day`).
    warning : str
        :func:`coverage_warning` for this market and horizon.
    """

    members: tuple[int, ...]
    days: int
    seed: int
    total_gain: float
    total_gain_se: float
    member_gains: np.ndarray
    catch: list[CatchTimes]
    exact_gain: float | None
    drift: float | None
    detection_day: int | None
    warning: str = field(repr=False, default="")

    @property
    def caught(self) -> bool:
        """Whether every member was flagged on every day at the end of the run."""
        return all(c.flagged_every_day_from > 0 for c in self.catch)

    def to_dict(self) -> dict[str, Any]:
        return {
            "members": list(self.members),
            "days": self.days,
            "seed": self.seed,
            "total_gain": self.total_gain,
            "total_gain_se": self.total_gain_se,
            "member_gains": self.member_gains.tolist(),
            "flagged_every_day_from": [c.flagged_every_day_from for c in self.catch],
            "penalty_days": [c.penalty_days for c in self.catch],
            "exact_gain_before_penalties": self.exact_gain,
            "drift": self.drift,
            "detection_day": self.detection_day,
            "caught": self.caught,
            "warning": self.warning,
        }

    def __str__(self) -> str:
        verdict = "gains" if self.total_gain > 2 * self.total_gain_se else "does not gain"
        lines = [
            f"coalition {list(self.members)} over {self.days} days (seed {self.seed}): "
            f"total gain {self.total_gain:+.4g} +- {self.total_gain_se:.2g} per day ({verdict})",
        ]
        for j, g, c in zip(self.members, self.member_gains, self.catch, strict=True):
            when = (
                f"flagged every day from day {c.flagged_every_day_from}"
                if c.flagged_every_day_from
                else "not flagged on the last day"
            )
            lines.append(
                f"  player {j}: gain {g:+.4g} per day, {c.penalty_days} flagged days, {when}"
            )
        if self.exact_gain is not None:
            lines.append(f"  exact long-run gain before penalties: {self.exact_gain:+.4g} per day")
        if self.drift is not None:
            det = (
                "never (no drift)"
                if not self.drift
                else f"about day {self.detection_day:,} (expected drift {self.drift:.3g})"
            )
            lines.append(f"  the ledger should flag the coalition from {det}")
        if self.warning:
            lines.append("  " + self.warning.replace("\n", "\n  "))
        return "\n".join(lines)


def _stationary_form(
    strategies: Mapping[int, Strategy],
) -> tuple[np.ndarray, dict[int, np.ndarray]] | None:
    """(signal probabilities, kernels per member) when every member is a
    PublicSignalCollusion on the same DaySignal; None otherwise."""
    signal: DaySignal | None = None
    kernels: dict[int, np.ndarray] = {}
    for j, s in strategies.items():
        if not isinstance(s, PublicSignalCollusion) or not isinstance(s.signal, DaySignal):
            return None
        if signal is None:
            signal = s.signal
        elif s.signal.salt != signal.salt or not np.array_equal(s.signal.probs, signal.probs):
            return None
        if s.kernels.shape[0] != signal.probs.size:
            return None
        kernels[int(j)] = s.kernels
    if signal is None:
        return None
    return signal.probs, kernels


def coalition_gain_exact(
    game: TwoStageGame,
    true_supertypes: Any,
    supertype_bids: Any,
    signal_probs: Any,
    kernels: Mapping[int, Any],
    *,
    mechanism: DNBEMechanism | None = None,
) -> np.ndarray:
    """Each member's exact long-run utility gain per day, before penalties, by enumeration.

    Nature draws the true types delta ~ prod_k theta_k, a public signal s ~ ``signal_probs``,
    and each member j bids by ``kernels[j][s, delta_j]``; everyone else bids its true type.
    With o1 = g1*(theta_hat), member j's utility per day is
    ``E[v_j(delta_j, o1, o2) - v_j(delta_hat_j, o1, o2)] + nu_j(theta_hat) - p_j^F(theta_hat)``
    (eqs. 5, 14, 15 without the penalty); the truthful utility is ``nu_j(theta) - p_j^F(theta)``.
    Returns the gains of the members in increasing order of index. Small games only (the
    enumeration is over Delta^n x signals x members' bids).

    Examples
    --------
    >>> from stochmech.games.finite import FiniteGame
    >>> v = np.zeros((2, 2, 2, 2)); v[:, :, 1, 1] = [[0.0, 2.0], [0.0, 2.0]]
    >>> game = FiniteGame(v, [[0.0, 9.0], [1.0, 1.0]])
    >>> theta = [[0.5, 0.5], [0.5, 0.5]]
    >>> truthful = np.eye(2)[None]
    >>> coalition_gain_exact(game, theta, theta, [1.0], {0: truthful, 1: truthful}).tolist()
    [0.0, 0.0]
    """
    mech = mechanism_for(game, mechanism)
    theta = check_supertypes(game, true_supertypes)
    bids = check_supertypes(game, supertype_bids)
    n, k = theta.shape
    w = np.asarray(signal_probs, dtype=float).reshape(-1)
    if w.size == 0 or np.any(~np.isfinite(w)) or np.any(w < 0) or abs(w.sum() - 1) > 1e-9:
        raise ValueError(f"signal_probs must be a pmf, got {signal_probs!r}")
    members = sorted(int(j) for j in kernels)
    if not members or any(not 0 <= j < n for j in members):
        raise ValueError(f"kernels must be keyed by players of 0..{n - 1}, got {sorted(kernels)}")
    kern = {}
    for j in members:
        kj = np.asarray(kernels[j], dtype=float)
        if kj.shape != (w.size, k, k):
            raise ValueError(f"kernels[{j}] must have shape {(w.size, k, k)}, got {kj.shape}")
        if np.any(kj < 0) or np.abs(kj.sum(axis=2) - 1).max() > 1e-9:
            raise ValueError(f"kernels[{j}] rows must be pmfs")
        kern[j] = kj
    size = k**n * w.size * k ** len(members)
    if size > _MAX_ENUMERATION:
        raise ValueError(f"the enumeration has {size} cases, above {_MAX_ENUMERATION}")
    types_l, bids_l, prob_l = [], [], []
    for delta in itertools.product(range(k), repeat=n):
        p_delta = math.prod(theta[j, delta[j]] for j in range(n))
        if p_delta == 0:
            continue
        for s in range(w.size):
            if w[s] == 0:
                continue
            for lie in itertools.product(range(k), repeat=len(members)):
                p = (
                    p_delta
                    * w[s]
                    * math.prod(kern[j][s, delta[j], b] for j, b in zip(members, lie, strict=True))
                )
                if p == 0:
                    continue
                bid = list(delta)
                for j, b in zip(members, lie, strict=True):
                    bid[j] = b
                types_l.append(delta)
                bids_l.append(bid)
                prob_l.append(p)
    types = np.array(types_l, dtype=np.int64)
    bid_arr = np.array(bids_l, dtype=np.int64)
    prob = np.array(prob_l)
    opening = mech.opening(bids)
    o1 = opening.o1
    states, sprobs = _state_law(game)
    term = np.zeros(n)
    for state, sp in zip(states, sprobs, strict=True):
        batch = None if state is None else np.repeat(state, len(prob), axis=0)
        o2 = game.second_stage(o1, bid_arr, batch)
        v_true = np.asarray(game.valuations(types, o1, o2, batch), dtype=float)
        v_bid = np.asarray(game.valuations(bid_arr, o1, o2, batch), dtype=float)
        term += sp * (prob @ (v_true - v_bid))
    dev = term + opening.expected_valuations - opening.first_stage_payments
    truth = mech.opening(theta)
    base = truth.expected_valuations - truth.first_stage_payments
    return (dev - base)[members]


def coalition_audit(
    game: TwoStageGame,
    true_supertypes: Any,
    strategies: Mapping[int, Strategy],
    days: int = 20_000,
    seed: int = 0,
    *,
    mechanism: DNBEMechanism | None = None,
    batches: int = 20,
) -> CoalitionAudit:
    """Plays a coalition's joint deviation against all truthful with the same seed.

    Parameters
    ----------
    game : TwoStageGame
    true_supertypes : array_like, shape (n, K)
    strategies : mapping player -> Strategy
        The members' strategies (e.g. :func:`~stochmech.audit.comonotone_collusion`); every
        other player is truthful.
    days, seed : int
    mechanism : DNBEMechanism, optional
    batches : int
        Batches for the standard error of the daily gain.

    Returns
    -------
    CoalitionAudit

    Examples
    --------
    >>> from stochmech.games.finite import FiniteGame
    >>> from stochmech.audit import comonotone_collusion
    >>> rng = np.random.default_rng(0)
    >>> game = FiniteGame(rng.normal(size=(3, 2, 2, 3)), rng.normal(size=(2, 3)))
    >>> theta = [[0.5, 0.5]] * 3
    >>> ring = comonotone_collusion(0, 1, theta[0], theta[1])
    >>> result = coalition_audit(game, theta, ring, days=3_000, seed=1)
    >>> result.members, result.drift, result.caught
    ((0, 1), 0.125, True)
    """
    mech = mechanism_for(game, mechanism)
    theta = check_supertypes(game, true_supertypes)
    n, k = theta.shape
    if not strategies:
        raise ValueError("strategies must name at least one member")
    members = tuple(sorted(int(j) for j in strategies))
    if any(not 0 <= j < n for j in members):
        raise ValueError(f"coalition members must be players of 0..{n - 1}, got {members}")
    for j, s in strategies.items():
        if not isinstance(s, Strategy):
            raise ValueError(f"strategies[{j}] must be a Strategy, got {type(s).__name__}")
    if isinstance(days, bool) or not isinstance(days, (int, np.integer)) or days < 2:
        raise ValueError(f"days must be an integer >= 2, got {days!r}")
    profile = [strategies.get(j, Truthful()) for j in range(n)]
    dev = simulate(game, theta, profile, days=int(days), seed=seed, mechanism=mech, daily=True)
    truth = simulate(game, theta, None, days=int(days), seed=seed, mechanism=mech, daily=True)
    assert dev.daily_utility is not None and truth.daily_utility is not None
    assert dev.daily_flags is not None
    diff = dev.daily_utility[:, members] - truth.daily_utility[:, members]
    total, se = batch_means(diff.sum(axis=1), batches)
    catches = [catch_times(dev.daily_flags[:, j], diff[:, m]) for m, j in enumerate(members)]
    exact = drift = det = None
    form = _stationary_form(strategies)
    declared = dev.supertype_bids
    if form is not None:
        probs, kernels = form
        try:
            exact = float(
                coalition_gain_exact(game, theta, declared, probs, kernels, mechanism=mech).sum()
            )
        except ValueError:
            exact = None
        drift = _coalition_drift(theta, declared, probs, kernels)
        if drift is not None:
            det = detection_day(drift, mech.gamma) if drift > 0 else 0
    return CoalitionAudit(
        members=members,
        days=int(days),
        seed=int(seed),
        total_gain=float(total),
        total_gain_se=float(se),
        member_gains=diff.mean(axis=0),
        catch=catches,
        exact_gain=exact,
        drift=drift,
        detection_day=det,
        warning=coverage_warning(n, k, int(days), supertypes=declared),
    )


def _coalition_drift(
    theta: np.ndarray, declared: np.ndarray, probs: np.ndarray, kernels: Mapping[int, np.ndarray]
) -> float | None:
    """Largest drift of the frequency and joint statistics under the coalition's bid law."""
    n, k = theta.shape
    members = sorted(kernels)
    if k ** len(members) * probs.size > _MAX_ENUMERATION or k**n > _MAX_ENUMERATION:
        return None
    law = np.zeros((k,) * len(members))
    for s in range(probs.size):
        part = probs[s]
        for j in members:
            part = np.multiply.outer(part, theta[j] @ kernels[j][s])
        law += part
    marginal = max(
        float(
            np.abs(
                law.sum(axis=tuple(a for a in range(len(members)) if a != m)) - declared[j]
            ).max()
        )
        for m, j in enumerate(members)
    )
    return max(round(marginal, 15), joint_drift(declared, members, law))


@dataclass(frozen=True)
class JointTestPower:
    """What :func:`joint_test_power` returns: one row per number of players.

    Attributes
    ----------
    n_players : tuple of int
    groups : tuple of float
        K^(n-1), the joint test's profile groups per player.
    drift : tuple of float
        The ring's joint drift (:func:`ring_drift`).
    predicted_day : tuple of int
        Expected-drift detection day (:func:`~stochmech.audit.detection_day`).
    caught_from : tuple of int
        Simulated: first day from which both ring members were flagged on every day through
        ``days`` (0: not caught by then).
    first_flag : tuple of int
        Simulated: the ring's first flag after day ``burn_in`` (0: none).
    days, gamma, seed : as given
    """

    n_players: tuple[int, ...]
    groups: tuple[float, ...]
    drift: tuple[float, ...]
    predicted_day: tuple[int, ...]
    caught_from: tuple[int, ...]
    first_flag: tuple[int, ...]
    supertype: tuple[float, ...]
    days: int
    gamma: float
    seed: int
    burn_in: int

    def rows(self) -> list[dict[str, Any]]:
        return [
            {
                "n_players": n,
                "groups": g,
                "drift": d,
                "predicted_day": p,
                "caught_from": c,
                "first_flag": f,
            }
            for n, g, d, p, c, f in zip(
                self.n_players,
                self.groups,
                self.drift,
                self.predicted_day,
                self.caught_from,
                self.first_flag,
                strict=True,
            )
        ]

    def __str__(self) -> str:
        lines = [
            f"2-player comonotone ring, declarations {list(self.supertype)}, gamma = "
            f"{self.gamma:g}, {self.days:,} days simulated (seed {self.seed})",
            f"  {'n':>4} {'K^(n-1)':>10} {'drift':>10} {'predicted day':>14} {'caught from':>12}",
        ]
        for row in self.rows():
            caught = f"{row['caught_from']:,}" if row["caught_from"] else "not caught"
            pred = row["predicted_day"]
            pred_s = f"{pred:,}" if pred <= 10**12 else "> 1e12"
            lines.append(
                f"  {row['n_players']:>4} {row['groups']:>10.3g} {row['drift']:>10.3g} "
                f"{pred_s:>14} {caught:>12}"
            )
        return "\n".join(lines)


def joint_test_power(
    n_players: Sequence[int] = (3, 5, 10, 20, 50),
    *,
    supertype: Any = (0.5, 0.5),
    days: int = 1_000_000,
    gamma: float = DEFAULT_GAMMA,
    seed: int = 0,
    chunk: int = 1 << 18,
    burn_in: int = 10,
) -> JointTestPower:
    """Days to detect a 2-player comonotone ring among n players, on the ledger directly.

    Players 0 and 1 bid the two halves of the quantile coupling of their declarations (both
    ``supertype``), drawn IID each day; the n - 2 others bid IID truthful types. The bids go
    through a :class:`~stochmech.BidLedger` (at most 64 players) in chunks; the ring is caught
    from the first day of its final run of flagged days.

    Examples
    --------
    >>> power = joint_test_power([3], days=5_000)
    >>> power.caught_from[0] > 0, power.predicted_day[0]
    (True, 407)
    """
    theta = np.asarray(supertype, dtype=float)
    _check_supertypes(theta[None, :])
    k = theta.size
    if isinstance(days, bool) or not isinstance(days, (int, np.integer)) or days < 2:
        raise ValueError(f"days must be an integer >= 2, got {days!r}")
    sizes = tuple(int(x) for x in n_players)
    for x in sizes:
        if not 2 <= x <= 64:
            raise ValueError(f"numbers of players must be in 2..64 (the ledger's limit), got {x}")
    cdf_pair = np.cumsum(quantile_coupling(theta, theta).ravel())
    cdf_pair[-1] = 1.0
    rng = np.random.default_rng(seed)
    groups, drifts, predicted, caught, first = [], [], [], [], []
    for n in sizes:
        ledger = BidLedger(np.tile(theta, (n, 1)), gamma=gamma)
        last_quiet = 0
        first_flag = 0
        done = 0
        while done < days:
            size = min(chunk, days - done)
            bids = sample_truthful_bids(np.tile(theta, (n, 1)), size, rng)
            cell = np.searchsorted(cdf_pair, rng.random(size), side="right").clip(0, k * k - 1)
            bids[:, 0] = cell // k
            bids[:, 1] = cell % k
            flags = ledger.record(bids).flags[:, :2].all(axis=1)
            day_no = np.arange(done + 1, done + size + 1)
            quiet = np.flatnonzero(~flags)
            if quiet.size:
                last_quiet = int(day_no[quiet[-1]])
            hits = np.flatnonzero(flags & (day_no > burn_in))
            if not first_flag and hits.size:
                first_flag = int(day_no[hits[0]])
            done += size
        drift = ring_drift(n, theta)
        groups.append(float(k) ** (n - 1))
        drifts.append(drift)
        predicted.append(detection_day(drift, gamma) if drift > 0 else 0)
        caught.append(last_quiet + 1 if last_quiet < days else 0)
        first.append(first_flag)
    return JointTestPower(
        n_players=sizes,
        groups=tuple(groups),
        drift=tuple(drifts),
        predicted_day=tuple(predicted),
        caught_from=tuple(caught),
        first_flag=tuple(first),
        supertype=tuple(float(x) for x in theta),
        days=int(days),
        gamma=float(gamma),
        seed=int(seed),
        burn_in=int(burn_in),
    )


def _when(day: int) -> str:
    return f"on about day {day:,}" if day <= 10**12 else "after more than 10^12 days"


def coverage_warning(
    n_players: int, n_types: int, days: int, *, supertypes: Any = None, gamma: float = DEFAULT_GAMMA
) -> str:
    """What an audit covers, and whether the joint test can catch a coalition at this horizon.

    The audit's deviations and bounds are unilateral (one player deviates, the others are
    truthful, Theorem 1). Coalitions that correlate their bids are only visible to the joint
    test of eq. (9); with K^(n-1) profile groups per player against L days it cannot fire once
    K^(n-1) is much larger than L, and a 2-player comonotone ring is caught only from about the
    expected-drift day of :func:`ring_drift`.

    Examples
    --------
    >>> text = coverage_warning(3, 2, 10_000, supertypes=[[0.5, 0.5]] * 3)
    >>> text.startswith("Coverage: unilateral deviations"), "WARNING" in text
    (True, False)
    >>> "WARNING" in coverage_warning(30, 5, 100_000)
    True
    """
    n, k, horizon = int(n_players), int(n_types), int(days)
    if n < 1 or k < 1 or horizon < 1:
        raise ValueError(
            f"n_players, n_types and days must be >= 1, got {n_players!r}, {n_types!r}, {days!r}"
        )
    head = "Coverage: unilateral deviations (one player at a time, the others truthful)."
    if n == 1:
        return head
    groups = float(k) ** (n - 1)
    text = (
        f"{head} Coalitions are checked only by the joint-independence test: "
        f"K^(n-1) = {groups:,.0f} profile groups per player over {horizon:,} days"
        if groups < 1e6
        else f"{head} Coalitions are checked only by the joint-independence test: "
        f"K^(n-1) = {groups:.3g} profile groups per player over {horizon:,} days"
    )
    ring = None
    if supertypes is not None:
        theta = _check_supertypes(supertypes)
        # the ring of the two players with the most concentrated declarations drifts most
        top = np.sort(theta.max(axis=1))[::-1]
        best = max(
            (
                float(np.abs(quantile_coupling(a, b) - np.outer(a, b)).max())
                for a, b in itertools.combinations(theta, 2)
            ),
            default=0.0,
        )
        rest = float(np.prod(top[2:])) if n > 2 else 1.0
        drift = best * rest
        ring = detection_day(drift, gamma) if drift > 0 else 0
    if groups > horizon:
        text += (
            "; WARNING: far more groups than days, so almost every group is seen about once and "
            "the joint test has no power at this horizon: coalitions that correlate their bids "
            "(through a public signal, comonotone bids, a shared lie) go undetected."
        )
        if ring:
            text = (
                text[:-1] + f" (a 2-player comonotone ring drifts the joint statistic by at most "
                f"{drift:.3g}, which the window reaches only {_when(ring)})."
            )
    elif ring is not None:
        if ring == 0:
            text += "; a comonotone ring of these declarations is indistinguishable from truth."
        elif ring > horizon:
            text += (
                f"; WARNING: a 2-player comonotone ring drifts the joint statistic by at most "
                f"{drift:.3g}, which the window reaches only {_when(ring)}, after the "
                "horizon: the joint test has no power against it here."
            )
        else:
            text += (
                f"; a 2-player comonotone ring drifts the joint statistic by at most "
                f"{drift:.3g}, which the window reaches on about day {ring:,} (the expected-drift "
                "detection day)."
            )
    else:
        text += "."
    return text
