"""Exact bounds on what a deviation can gain: transport LPs certified by their duals.

See :mod:`stochmech.audit` for the model. Every function takes the game, the audited player,
its true supertype and the declared profile, and honours the mechanism's switches.
"""

from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import linprog

from stochmech.audit.adversaries import DaySignal, quantile_coupling
from stochmech.games.base import TwoStageGame
from stochmech.mechanism import DNBEMechanism, check_supertypes
from stochmech.strategies import (
    FixedBid,
    PlayerContext,
    PublicSignalCollusion,
    StationaryMisreport,
    Strategy,
    SupertypeLie,
    Truthful,
)

__all__ = [
    "MARGINAL_TOLERANCE",
    "CorrelatedDeviation",
    "LieSearch",
    "StationaryDeviation",
    "best_correlated_deviation",
    "best_stationary_deviation",
    "best_supertype_lie",
    "profile_payoffs",
    "simplex_grid",
    "stationary_gain",
    "stationary_kernel",
    "window_deviation_bound",
]

#: tolerance on marginals: a coupling whose bids miss the declaration by more is bankrupting
MARGINAL_TOLERANCE = 1e-9


def mechanism_for(game: TwoStageGame, mechanism: DNBEMechanism | None) -> DNBEMechanism:
    if mechanism is None:
        return DNBEMechanism(game)
    if not isinstance(mechanism, DNBEMechanism):
        raise ValueError(f"mechanism must be a DNBEMechanism, got {type(mechanism).__name__}")
    if mechanism.game is not game:
        raise ValueError("mechanism was built for a different game")
    return mechanism


def player_index(game: TwoStageGame, player: Any) -> int:
    if isinstance(player, bool) or not isinstance(player, (int, np.integer)):
        raise ValueError(f"player must be an integer, got {player!r}")
    if not 0 <= int(player) < game.n_players:
        raise ValueError(f"player {player} does not exist (n = {game.n_players})")
    return int(player)


def _own_pmf(game: TwoStageGame, i: int, p: Any, what: str) -> np.ndarray:
    """Player i's pmf over its own K_i types (a padded row with zeros beyond K_i is trimmed)."""
    k = int(game.type_counts[i])
    arr = np.asarray(p, dtype=np.float64) if not isinstance(p, str) else p
    if isinstance(arr, np.ndarray) and arr.ndim == 1 and arr.size > k and not np.any(arr[k:]):
        arr = arr[:k]
    return _pmf(arr, k, what)


def _pmf(p: Any, k: int, what: str) -> np.ndarray:
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
    if abs(arr.sum() - 1.0) > 1e-9:
        raise ValueError(f"{what} sums to {float(arr.sum())!r}, not 1")
    return arr


def _f(x: Any) -> float:
    return float(x)


# ---------------------------------------------------------------------------------------------
# the transport LP, with a certified upper bound
# ---------------------------------------------------------------------------------------------


def _transport(
    payoff: np.ndarray,
    rows: np.ndarray,
    lower: np.ndarray | None = None,
    upper: np.ndarray | None = None,
) -> tuple[float, float, np.ndarray]:
    """max sum pi * payoff over pi >= 0 with row sums ``rows`` and column sums in
    [``lower``, ``upper``] (both None: free columns; equal: a transport problem).

    Returns ``(value, bound, coupling)``: the value of the returned coupling and an upper bound
    on the optimum from an exactly feasible dual solution (any column prices w give one:
    ``u_t = max_s (payoff[t, s] - w_s)`` and the bound ``rows.u + sum_s max(upper_s w_s,
    lower_s w_s)``).
    """
    k_rows, k_cols = payoff.shape
    if lower is None and upper is None:
        best = payoff.argmax(axis=1)
        coupling = np.zeros_like(payoff)
        coupling[np.arange(k_rows), best] = rows
        value = float(rows @ payoff.max(axis=1))
        return value, value, coupling
    lo = np.zeros(k_cols) if lower is None else np.asarray(lower, dtype=float)
    hi = np.full(k_cols, np.inf) if upper is None else np.asarray(upper, dtype=float)
    a_rows = np.zeros((k_rows, k_rows * k_cols))
    for t in range(k_rows):
        a_rows[t, t * k_cols : (t + 1) * k_cols] = 1.0
    a_cols = np.zeros((k_cols, k_rows * k_cols))
    for s in range(k_cols):
        a_cols[s, s::k_cols] = 1.0
    options: Any = {"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10}
    exact = bool(np.array_equal(lo, hi))
    if exact:
        res = linprog(
            -payoff.ravel(),
            A_eq=np.vstack([a_rows, a_cols]),
            b_eq=np.concatenate([rows, lo]),
            bounds=(0.0, None),
            method="highs",
            options=options,
        )
    else:
        finite = np.isfinite(hi)
        res = linprog(
            -payoff.ravel(),
            A_ub=np.vstack([a_cols[finite], -a_cols]),
            b_ub=np.concatenate([hi[finite], -lo]),
            A_eq=a_rows,
            b_eq=rows,
            bounds=(0.0, None),
            method="highs",
            options=options,
        )
    if res.status != 0 or res.x is None:  # pragma: no cover - the LP is always feasible here
        raise RuntimeError(f"transport LP failed: {res.message}")
    coupling = np.maximum(res.x.reshape(k_rows, k_cols), 0.0)
    value = float((coupling * payoff).sum())
    if exact:
        w = -np.asarray(res.eqlin.marginals[k_rows:], dtype=float)
    else:
        m = np.asarray(res.ineqlin.marginals, dtype=float)
        w_hi = np.zeros(k_cols)
        w_hi[finite] = -m[: int(finite.sum())]
        w = w_hi + m[int(finite.sum()) :]
        w[~finite] = np.minimum(w[~finite], 0.0)
    u = (payoff - w[None, :]).max(axis=1)
    with np.errstate(invalid="ignore"):
        col_cost = np.where(w > 0, hi * w, lo * w)
    bound = float(rows @ u + col_cost.sum())
    return value, max(bound, value), coupling


def _kernel_of(coupling: np.ndarray, rows: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """P(s | t) = pi(t, s) / theta(t); rows of zero-probability types follow ``fallback``."""
    kernel = np.empty_like(coupling)
    for t in range(coupling.shape[0]):
        mass = coupling[t].sum()
        kernel[t] = coupling[t] / mass if rows[t] > 0 and mass > 0 else fallback
    return kernel / kernel.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------------------------------------
# the best stationary deviation
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StationaryDeviation:
    """The most a player gains by a stationary misreport after declaring a supertype.

    Attributes
    ----------
    player : int
    true_supertype : (K,) float
        theta_i.
    supertype_bids : (n, K) float
        The declared profile theta_hat (the player's declaration in row ``player``).
    coupling : (K, K) float
        Optimal pi(t, s) of the player's true type t and its bid s.
    kernel : (K, K) float
        The misreporting kernel P(s | t) that realizes the coupling.
    payoffs : (K, K) float
        C(t, s) of the game (``deviation_payoffs``).
    rho : float
        sum pi C, the player's long-run average valuation (rho_i of eq. 26).
    welfare, welfare_without, expected_valuation : float
        W*(theta_hat), W*(theta_hat_-i) and nu_i(theta_hat).
    truthful_welfare, truthful_expected_valuation : float
        W*(theta_i, theta_hat_-i) and nu_i(theta_i, theta_hat_-i).
    utility, truthful_utility : float
        Long-run average utility of the deviation and of the truth (others' bids fixed).
    gain : float
        ``utility - truthful_utility`` for the returned coupling; <= 0 by Theorem 1.
    gain_upper : float
        A certified upper bound on the gain of every admissible coupling (LP dual).
    first_stage_payment, penalize : bool
        The mechanism's switches the bound was computed for.
    """

    player: int
    true_supertype: np.ndarray
    supertype_bids: np.ndarray
    coupling: np.ndarray
    kernel: np.ndarray
    payoffs: np.ndarray
    rho: float
    welfare: float
    welfare_without: float
    expected_valuation: float
    truthful_welfare: float
    truthful_expected_valuation: float
    utility: float
    truthful_utility: float
    gain: float
    gain_upper: float
    first_stage_payment: bool = True
    penalize: bool = True

    @property
    def declared(self) -> np.ndarray:
        """The player's declared supertype theta_hat_i."""
        return self.supertype_bids[self.player]

    def strategy(self) -> StationaryMisreport:
        """The deviation as a strategy to simulate: declare theta_hat_i, bid by the kernel."""
        return StationaryMisreport(self.kernel, supertype_bid=self.declared.copy())

    def to_dict(self) -> dict[str, Any]:
        return {
            "player": self.player,
            "true_supertype": self.true_supertype.tolist(),
            "declared": self.declared.tolist(),
            "kernel": self.kernel.tolist(),
            "rho": self.rho,
            "welfare": self.welfare,
            "welfare_without": self.welfare_without,
            "expected_valuation": self.expected_valuation,
            "truthful_welfare": self.truthful_welfare,
            "utility": self.utility,
            "truthful_utility": self.truthful_utility,
            "gain": self.gain,
            "gain_upper": self.gain_upper,
            "first_stage_payment": self.first_stage_payment,
            "penalize": self.penalize,
        }


def _pieces(
    game: TwoStageGame, i: int, theta_i: np.ndarray, bids: np.ndarray
) -> tuple[float, float, float, float, float]:
    """W*(bids), W*(bids_-i), nu_i(bids), W*(theta_i, bids_-i), nu_i(theta_i, bids_-i)."""
    truthful = bids.copy()
    truthful[i] = 0.0
    truthful[i, : theta_i.size] = theta_i
    return (
        _f(game.optimal_welfare(bids)),
        _f(game.optimal_welfare_without(bids, i)),
        _f(np.asarray(game.expected_valuations(bids))[i]),
        _f(game.optimal_welfare(truthful)),
        _f(np.asarray(game.expected_valuations(truthful))[i]),
    )


def _utilities(
    mech: DNBEMechanism,
    payoffs: np.ndarray,
    declared: np.ndarray,
    pieces: tuple[float, float, float, float, float],
) -> tuple[np.ndarray, float, float]:
    """(objective table, constant, truthful utility) such that a coupling's long-run utility is
    ``sum pi * table + constant``, for the mechanism's switches (see the module docstring)."""
    welfare, without, nu, truth_welfare, truth_nu = pieces
    first = welfare - without - nu  # minus the first-stage payment p_i^F, plus nu_i
    if mech.penalize:
        # bids follow the declaration, so E[v_i(s, o1, o2)] = nu_i(theta_hat): it cancels
        table = payoffs
        const = first if mech.first_stage_payment else 0.0
    else:
        # p^S = v_i(s, ...) - nu_i: the player keeps C(t, s) - C(s, s) + nu_i
        table = payoffs - np.diag(payoffs)[None, :]
        const = (first if mech.first_stage_payment else 0.0) + nu
    truthful = truth_welfare - without if mech.first_stage_payment else truth_nu
    return table, const, truthful


def best_stationary_deviation(
    game: TwoStageGame,
    player: int,
    true_supertype: Any,
    supertype_bids: Any,
    *,
    mechanism: DNBEMechanism | None = None,
) -> StationaryDeviation:
    """The best stationary misreport after a declaration: a transport LP.

    See docs/modelling.md ("The best stationary deviation").

    Maximizes ``sum_{t,s} pi(t, s) C(t, s)`` over couplings pi with row marginal
    ``true_supertype`` and column marginal the player's declaration ``supertype_bids[player]``
    (``C = game.deviation_payoffs(supertype_bids, player)``), with HiGHS. Theorem 1 says the
    gain over the truth, ``rho* + W*(theta_hat) - nu_i(theta_hat) - W*(theta_i,
    theta_hat_-i)``, is <= 0. The other players' declarations are fixed and their type bids
    follow them independently.

    Parameters
    ----------
    game : TwoStageGame
    player : int
    true_supertype : array_like, shape (K,)
        The player's true supertype theta_i.
    supertype_bids : array_like, shape (n, K)
        The declared profile; row ``player`` is the player's declaration theta_hat_i.
    mechanism : DNBEMechanism, optional
        Use its switches: with ``penalize=False`` the bids need not follow the declaration,
        with ``first_stage_payment=False`` the player's utility is its own valuation only.

    Returns
    -------
    StationaryDeviation

    Examples
    --------
    A player who declares the truth cannot gain by shuffling its bids:

    >>> from stochmech.games.finite import FiniteGame
    >>> v = np.zeros((2, 2, 2, 2)); v[:, :, 1, 1] = [[0.0, 2.0], [0.0, 2.0]]
    >>> game = FiniteGame(v, [[0.0, 9.0], [1.0, 1.0]])
    >>> theta = np.array([[0.5, 0.5], [0.5, 0.5]])
    >>> dev = best_stationary_deviation(game, 0, theta[0], theta)
    >>> round(dev.gain, 12), dev.kernel.round(3).tolist()
    (0.0, [[1.0, 0.0], [0.0, 1.0]])

    Without the penalty the same player profits by always bidding the low type: half the time
    the other player asks for service, and the high type is served without paying for it.

    >>> broken = DNBEMechanism(game, penalize=False)
    >>> dev = best_stationary_deviation(game, 0, theta[0], theta, mechanism=broken)
    >>> round(dev.gain, 12), dev.kernel.round(3).tolist()
    (0.5, [[1.0, 0.0], [1.0, 0.0]])
    """
    mech = mechanism_for(game, mechanism)
    i = player_index(game, player)
    bids = check_supertypes(game, supertype_bids)
    theta_i = _own_pmf(game, i, true_supertype, "true_supertype")
    bid_i = bids[i, : theta_i.size]
    payoffs = np.asarray(game.deviation_payoffs(bids, i), dtype=float)
    pieces = _pieces(game, i, theta_i, bids)
    table, const, truthful = _utilities(mech, payoffs, bid_i, pieces)
    if mech.penalize:
        value, upper, coupling = _transport(table, theta_i, bid_i, bid_i)
    else:
        value, upper, coupling = _transport(table, theta_i)
    declared = bid_i if mech.penalize else coupling.sum(axis=0)
    utility = value + const
    return StationaryDeviation(
        player=i,
        true_supertype=theta_i,
        supertype_bids=bids,
        coupling=coupling,
        kernel=_kernel_of(coupling, theta_i, declared),
        payoffs=payoffs,
        rho=float((coupling * payoffs).sum()),
        welfare=pieces[0],
        welfare_without=pieces[1],
        expected_valuation=pieces[2],
        truthful_welfare=pieces[3],
        truthful_expected_valuation=pieces[4],
        utility=utility,
        truthful_utility=truthful,
        gain=utility - truthful,
        gain_upper=upper + const - truthful,
        first_stage_payment=mech.first_stage_payment,
        penalize=mech.penalize,
    )


def window_deviation_bound(
    game: TwoStageGame,
    player: int,
    true_supertype: Any,
    supertype_bids: Any,
    radius: float,
    *,
    mechanism: DNBEMechanism | None = None,
) -> StationaryDeviation:
    """The best coupling whose bid frequencies stay within ``radius`` of the declaration.

    The frequency test of eq. (7) lets a player's bid frequencies drift up to r(l) from its
    declaration without a penalty on day l. A deviation that is not flagged on day L therefore
    has an empirical coupling whose column marginal is within r(L) of the declaration; its
    average payoff (penalties aside) is at most this LP with ``radius = r(L)``: the
    finite-horizon counterpart of :func:`best_stationary_deviation`, which it equals at
    ``radius = 0``. It tends to 0 with the radius, as Theorem 1 says it must in the long run.

    Examples
    --------
    >>> from stochmech.games.finite import FiniteGame
    >>> v = np.zeros((2, 2, 2, 2)); v[:, :, 1, 1] = [[0.0, 2.0], [0.0, 2.0]]
    >>> game = FiniteGame(v, [[0.0, 9.0], [1.0, 1.0]])
    >>> theta = np.array([[0.5, 0.5], [0.5, 0.5]])
    >>> [round(window_deviation_bound(game, 0, theta[0], theta, r).gain, 6) for r in (0, 0.1)]
    [0.0, 0.1]
    """
    mech = mechanism_for(game, mechanism)
    radius = float(radius)
    if not (math.isfinite(radius) and radius >= 0):
        raise ValueError(f"radius must be a finite number >= 0, got {radius!r}")
    if not mech.penalize:
        return best_stationary_deviation(
            game, player, true_supertype, supertype_bids, mechanism=mechanism
        )
    i = player_index(game, player)
    bids = check_supertypes(game, supertype_bids)
    theta_i = _own_pmf(game, i, true_supertype, "true_supertype")
    bid_i = bids[i, : theta_i.size]
    payoffs = np.asarray(game.deviation_payoffs(bids, i), dtype=float)
    pieces = _pieces(game, i, theta_i, bids)
    _, _, truthful = _utilities(mech, payoffs, bid_i, pieces)
    welfare, without, nu = pieces[:3]
    table = payoffs - np.diag(payoffs)[None, :]
    const = (welfare - without - nu if mech.first_stage_payment else 0.0) + nu
    lo = np.maximum(bid_i - radius, 0.0)
    hi = np.minimum(bid_i + radius, 1.0)
    value, upper, coupling = _transport(table, theta_i, lo, hi)
    utility = value + const
    return StationaryDeviation(
        player=i,
        true_supertype=theta_i,
        supertype_bids=bids,
        coupling=coupling,
        kernel=_kernel_of(coupling, theta_i, bid_i),
        payoffs=payoffs,
        rho=float((coupling * payoffs).sum()),
        welfare=pieces[0],
        welfare_without=pieces[1],
        expected_valuation=pieces[2],
        truthful_welfare=pieces[3],
        truthful_expected_valuation=pieces[4],
        utility=utility,
        truthful_utility=truthful,
        gain=utility - truthful,
        gain_upper=upper + const - truthful,
        first_stage_payment=mech.first_stage_payment,
        penalize=mech.penalize,
    )


# ---------------------------------------------------------------------------------------------
# the best deviation when the others reveal their bids through a public signal
# ---------------------------------------------------------------------------------------------


def _state_law(game: TwoStageGame) -> tuple[list[Any], np.ndarray]:
    """The exogenous states as a list of one-day batches, with their probabilities."""
    if game.sample_states(np.random.default_rng(0), 1) is None:
        return [None], np.ones(1)
    support = game.state_support()
    if support is None:
        raise ValueError(
            f"{type(game).__name__} has an exogenous state without a finite law "
            "(state_support() is None): per-profile payoffs need one"
        )
    states, probs = support
    return [states[k : k + 1] for k in range(len(probs))], np.asarray(probs, dtype=float)


def profile_payoffs(
    game: TwoStageGame, supertype_bids: Any, player: int, *, max_profiles: int = 4096
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Player i's payoff for each profile of the others' bids: C_d(t, s).

    ``C_d(t, s) = E_omega[v_i(t, o1, g2*(o1, (s, d), omega))]`` for every profile d of the other
    players' type bids with positive probability under their declarations, with
    o1 = g1*(supertype_bids). Averaging over d gives ``game.deviation_payoffs``.

    Returns
    -------
    profiles : (P, n - 1) int
        The others' bid profiles (players in increasing order, ``player`` left out).
    weights : (P,) float
        Their probabilities under the declarations (product law).
    payoffs : (P, K, K) float
        ``payoffs[p, t, s]`` = C_d(t, s) for profile p.

    Examples
    --------
    >>> from stochmech.games.finite import FiniteGame
    >>> v = np.zeros((2, 2, 2, 2)); v[:, :, 1, 1] = [[0.0, 2.0], [0.0, 2.0]]
    >>> game = FiniteGame(v, [[0.0, 9.0], [1.0, 1.0]])
    >>> profiles, weights, table = profile_payoffs(game, [[0.5, 0.5], [0.5, 0.5]], 0)
    >>> profiles.tolist(), weights.tolist(), table[0].tolist()
    ([[0], [1]], [0.5, 0.5], [[0.0, 0.0], [0.0, 2.0]])
    """
    bids = check_supertypes(game, supertype_bids)
    i = player_index(game, player)
    k = int(game.type_counts[i])
    others = [j for j in range(game.n_players) if j != i]
    supports = [np.flatnonzero(bids[j] > 0) for j in others]
    count = math.prod(len(s) for s in supports)
    if count > max_profiles:
        raise ValueError(
            f"the others' bids have {count} profiles with positive probability, above "
            f"max_profiles = {max_profiles}"
        )
    profiles = np.array(list(itertools.product(*supports)), dtype=np.int64).reshape(
        count, len(others)
    )
    weights = np.prod(bids[others, :][np.arange(len(others)), profiles], axis=1)
    if not others:
        weights = np.ones(1)
    o1 = game.first_stage(bids)
    types = np.empty((count * k, game.n_players), dtype=np.int64)
    types[:, others] = np.repeat(profiles, k, axis=0)
    types[:, i] = np.tile(np.arange(k), count)
    states, probs = _state_law(game)
    table = np.zeros((count, k, k))
    for state, prob in zip(states, probs, strict=True):
        batch = None if state is None else np.repeat(state, count * k, axis=0)
        o2 = game.second_stage(o1, types, batch)
        for t in range(k):
            true = types.copy()
            true[:, i] = t
            v = np.asarray(game.valuations(true, o1, o2, batch), dtype=float)[:, i]
            table[:, t, :] += prob * v.reshape(count, k)
    return profiles, weights, table


@dataclass(frozen=True)
class CorrelatedDeviation:
    """The most a player gains when the others let it know their bids before it bids.

    Others who bid by their declarations but as functions of a public signal (common
    randomness) reveal today's profile d to a player that reads the same signal; the player can
    then bid by a kernel that depends on d, as long as its bids keep following its declaration
    independently of d (else the joint test of eq. 9 fires). The best such deviation is one
    transport LP per profile d. The argument of eq. (27) bounds it too: its gain is <= 0.

    Attributes
    ----------
    player : int
    true_supertype : (K,)
    supertype_bids : (n, K)
    profiles : (P, n - 1) int
    weights : (P,)
    couplings, kernels : (P, K, K)
        Optimal coupling and kernel for each profile of the others' bids.
    rho : float
        sum_d w_d sum pi_d C_d.
    utility, truthful_utility, gain, gain_upper : float
        As in :class:`StationaryDeviation`.
    first_stage_payment, penalize : bool
    """

    player: int
    true_supertype: np.ndarray
    supertype_bids: np.ndarray
    profiles: np.ndarray
    weights: np.ndarray
    couplings: np.ndarray
    kernels: np.ndarray
    rho: float
    utility: float
    truthful_utility: float
    gain: float
    gain_upper: float
    first_stage_payment: bool = True
    penalize: bool = True

    def strategies(self, salt: int = 0) -> dict[int, Strategy]:
        """Strategies that realize the deviation, keyed by player: the player bids by the
        kernel of today's profile, and the others bid that profile, all read off a shared
        :class:`DaySignal` whose law is the profiles' law.

        Each other player bids exactly by its declaration and independently of the rest, so
        no marginal or joint test can tell these strategies from honest ones.
        """
        signal = DaySignal(self.weights, salt=salt)
        k = self.kernels.shape[1]
        others = [j for j in range(self.supertype_bids.shape[0]) if j != self.player]
        out: dict[int, Strategy] = {
            self.player: PublicSignalCollusion(
                signal, self.kernels, supertype_bid=self.supertype_bids[self.player].copy()
            )
        }
        for col, j in enumerate(others):
            kernels = np.zeros((len(self.weights), k, k))
            kernels[np.arange(len(self.weights)), :, self.profiles[:, col]] = 1.0
            out[j] = PublicSignalCollusion(
                signal, kernels, supertype_bid=self.supertype_bids[j].copy()
            )
        return out

    def helpers(self, salt: int = 0) -> dict[int, Strategy]:
        """The other players' strategies only (the truthful baseline plays against these)."""
        return {j: s for j, s in self.strategies(salt).items() if j != self.player}

    def to_dict(self) -> dict[str, Any]:
        return {
            "player": self.player,
            "declared": self.supertype_bids[self.player].tolist(),
            "profiles": self.profiles.tolist(),
            "kernels": self.kernels.tolist(),
            "rho": self.rho,
            "utility": self.utility,
            "truthful_utility": self.truthful_utility,
            "gain": self.gain,
            "gain_upper": self.gain_upper,
        }


def best_correlated_deviation(
    game: TwoStageGame,
    player: int,
    true_supertype: Any,
    supertype_bids: Any,
    *,
    mechanism: DNBEMechanism | None = None,
    max_profiles: int = 4096,
) -> CorrelatedDeviation:
    """The best deviation of ``player`` when the others reveal their bids (see
    :class:`CorrelatedDeviation`): one transport LP per profile of the others' bids.

    Examples
    --------
    >>> from stochmech.games.finite import FiniteGame
    >>> rng = np.random.default_rng(1)
    >>> game = FiniteGame(rng.normal(size=(3, 2, 2, 3)), rng.normal(size=(2, 3)))
    >>> bids = np.array([[0.5, 0.5], [0.2, 0.8], [0.6, 0.4]])
    >>> corr = best_correlated_deviation(game, 0, bids[0], bids)
    >>> stat = best_stationary_deviation(game, 0, bids[0], bids)
    >>> bool(stat.gain <= corr.gain + 1e-12 and corr.gain_upper <= 1e-9)
    True
    """
    mech = mechanism_for(game, mechanism)
    i = player_index(game, player)
    bids = check_supertypes(game, supertype_bids)
    theta_i = _own_pmf(game, i, true_supertype, "true_supertype")
    bid_i = bids[i, : theta_i.size]
    profiles, weights, tables = profile_payoffs(game, bids, i, max_profiles=max_profiles)
    pieces = _pieces(game, i, theta_i, bids)
    welfare, without, nu = pieces[:3]
    first = welfare - without - nu if mech.first_stage_payment else 0.0
    truthful = pieces[3] - without if mech.first_stage_payment else pieces[4]
    couplings = np.empty_like(tables)
    kernels = np.empty_like(tables)
    value = upper = rho = 0.0
    for p, (w, c) in enumerate(zip(weights, tables, strict=True)):
        if mech.penalize:
            v, u, pi = _transport(c, theta_i, bid_i, bid_i)
        else:
            v, u, pi = _transport(c - np.diag(c)[None, :], theta_i)
        couplings[p] = pi
        kernels[p] = _kernel_of(pi, theta_i, bid_i if mech.penalize else pi.sum(axis=0))
        value += w * v
        upper += w * u
        rho += w * float((pi * c).sum())
    const = first if mech.penalize else first + nu
    return CorrelatedDeviation(
        player=i,
        true_supertype=theta_i,
        supertype_bids=bids,
        profiles=profiles,
        weights=weights,
        couplings=couplings,
        kernels=kernels,
        rho=rho,
        utility=value + const,
        truthful_utility=truthful,
        gain=value + const - truthful,
        gain_upper=upper + const - truthful,
        first_stage_payment=mech.first_stage_payment,
        penalize=mech.penalize,
    )


# ---------------------------------------------------------------------------------------------
# searching over supertype lies
# ---------------------------------------------------------------------------------------------


def simplex_grid(n_types: int, resolution: int) -> np.ndarray:
    """Every pmf over ``n_types`` types whose entries are multiples of 1/``resolution``.

    Examples
    --------
    >>> simplex_grid(2, 2).tolist()
    [[0.0, 1.0], [0.5, 0.5], [1.0, 0.0]]
    >>> simplex_grid(3, 10).shape
    (66, 3)
    """
    k = int(n_types)
    m = int(resolution)
    if k < 1:
        raise ValueError(f"n_types must be >= 1, got {n_types!r}")
    if m < 1:
        raise ValueError(f"resolution must be >= 1, got {resolution!r}")
    if math.comb(m + k - 1, k - 1) > 1_000_000:
        raise ValueError(
            f"a grid of resolution {m} over {k} types has {math.comb(m + k - 1, k - 1)} "
            "points; choose a smaller resolution"
        )
    points = []
    for bars in itertools.combinations(range(m + k - 1), k - 1):
        edges = (-1, *bars, m + k - 1)
        points.append([edges[j + 1] - edges[j] - 1 for j in range(k)])
    return np.array(sorted(points), dtype=float) / m


def _default_resolution(k: int, budget: int = 300) -> int:
    m = 1
    while m < 20 and math.comb(m + k, k - 1) <= budget:
        m += 1
    return m


@dataclass(frozen=True)
class LieSearch:
    """The best stationary deviation over a set of declarations (others' bids fixed).

    Attributes
    ----------
    best : StationaryDeviation
        The declaration (and kernel) with the largest gain.
    declarations : (M, K)
        The declarations tried (the truth first).
    gains, gains_upper : (M,)
        LP gain of each declaration and its certified upper bound.
    results : tuple of StationaryDeviation
        The LP solution of each declaration.
    """

    best: StationaryDeviation
    declarations: np.ndarray
    gains: np.ndarray
    gains_upper: np.ndarray
    results: tuple[StationaryDeviation, ...] = ()

    @property
    def epsilon(self) -> float:
        """max over declarations of the certified gain bound: the audit's LP epsilon."""
        return float(self.gains_upper.max())

    def best_lie(self, min_distance: float = 1e-9) -> int:
        """Index of the best declaration at least ``min_distance`` (max-norm) from the truth."""
        dist = np.abs(self.declarations - self.best.true_supertype).max(axis=1)
        far = np.flatnonzero(dist >= min_distance)
        if far.size == 0:
            return 0
        return int(far[np.argmax(self.gains[far])])


def best_supertype_lie(
    game: TwoStageGame,
    player: int,
    true_supertype: Any,
    supertype_bids: Any,
    *,
    candidates: Any = None,
    resolution: int | None = None,
    mechanism: DNBEMechanism | None = None,
) -> LieSearch:
    """Solves :func:`best_stationary_deviation` for every declaration of a set or a grid.

    Parameters
    ----------
    game, player, true_supertype :
        As in :func:`best_stationary_deviation`.
    supertype_bids : array_like, shape (n, K)
        The others' declarations (row ``player`` is ignored).
    candidates : array_like, shape (M, K), optional
        Declarations to try. Default: the simplex grid of ``resolution``.
    resolution : int, optional
        Grid resolution (default: the finest with at most about 300 points, at most 20).
    mechanism : DNBEMechanism, optional

    Examples
    --------
    >>> from stochmech.games.finite import FiniteGame
    >>> rng = np.random.default_rng(5)
    >>> game = FiniteGame(rng.normal(size=(2, 3, 2, 2)), rng.normal(size=(2, 2)))
    >>> bids = np.array([[0.2, 0.3, 0.5], [0.6, 0.2, 0.2]])
    >>> search = best_supertype_lie(game, 0, bids[0], bids, resolution=5)
    >>> search.declarations.shape, bool(search.epsilon <= 1e-9)
    ((22, 3), True)
    """
    i = player_index(game, player)
    theta_i = _own_pmf(game, i, true_supertype, "true_supertype")
    bids = check_supertypes(game, supertype_bids)
    k = int(game.type_counts[i])
    if candidates is None:
        m = _default_resolution(k) if resolution is None else int(resolution)
        cands = simplex_grid(k, m)
    else:
        cands = np.array(candidates, dtype=float)
        if cands.ndim != 2 or cands.shape[1] != k:
            raise ValueError(f"candidates must have shape (M, {k}), got {cands.shape}")
        for r, c in enumerate(cands):
            _pmf(c, k, f"candidates[{r}]")
    cands = np.vstack([theta_i[None, :], cands])
    results = []
    for c in cands:
        profile = bids.copy()
        profile[i] = 0.0
        profile[i, :k] = c
        results.append(best_stationary_deviation(game, i, theta_i, profile, mechanism=mechanism))
    gains = np.array([r.gain for r in results])
    uppers = np.array([r.gain_upper for r in results])
    return LieSearch(
        best=results[int(np.argmax(gains))],
        declarations=cands,
        gains=gains,
        gains_upper=uppers,
        results=tuple(results),
    )


# ---------------------------------------------------------------------------------------------
# stationary strategies: their kernels and exact long-run gains
# ---------------------------------------------------------------------------------------------


def stationary_kernel(
    strategy: Strategy, context: PlayerContext
) -> tuple[np.ndarray, np.ndarray] | None:
    """``(declaration, kernel)`` of a stationary strategy, or None for other strategies.

    Knows :class:`~stochmech.strategies.Truthful`,
    :class:`~stochmech.strategies.StationaryMisreport`,
    :class:`~stochmech.strategies.SupertypeLie` and :class:`~stochmech.strategies.FixedBid`.

    Examples
    --------
    >>> ctx = PlayerContext(player=0, supertype=np.array([0.5, 0.5]), n_types=2)
    >>> decl, kern = stationary_kernel(FixedBid(1), ctx)
    >>> decl.tolist(), kern.tolist()
    ([0.5, 0.5], [[0.0, 1.0], [0.0, 1.0]])
    """
    s = copy.deepcopy(strategy)
    s.prepare(context)
    k = context.n_types
    theta = np.asarray(context.supertype, dtype=float)
    if s.history_dependent:
        return None
    declared = np.asarray(s.supertype_bid(context), dtype=float)
    if type(s) is Truthful:
        return declared, np.eye(k)
    if isinstance(s, StationaryMisreport):
        return declared, s.kernel.copy()
    if isinstance(s, SupertypeLie):
        if s.coupling == "independent":
            return declared, np.tile(declared, (k, 1))
        pi = quantile_coupling(theta, declared)
        return declared, _kernel_of(pi, theta, declared)
    if isinstance(s, FixedBid):
        kern = np.zeros((k, k))
        kern[:, s.bid_type] = 1.0
        return declared, kern
    return None


def stationary_gain(
    game: TwoStageGame,
    player: int,
    true_supertype: Any,
    supertype_bids: Any,
    kernel: Any,
    *,
    mechanism: DNBEMechanism | None = None,
) -> float:
    """Exact long-run gain over the truth of declaring ``supertype_bids[player]`` and bidding
    by ``kernel``; ``-inf`` when the penalty bankrupts it (its bids do not follow the
    declaration, so eq. 7 fires on every day from some day on).

    Examples
    --------
    >>> from stochmech.games.finite import FiniteGame
    >>> v = np.zeros((2, 2, 2, 2)); v[:, :, 1, 1] = [[0.0, 2.0], [0.0, 2.0]]
    >>> game = FiniteGame(v, [[0.0, 9.0], [1.0, 1.0]])
    >>> theta = np.array([[0.5, 0.5], [0.5, 0.5]])
    >>> always_low = [[1.0, 0.0], [1.0, 0.0]]
    >>> stationary_gain(game, 0, theta[0], theta, always_low)
    -inf
    >>> stationary_gain(game, 0, theta[0], theta, always_low,
    ...                 mechanism=DNBEMechanism(game, penalize=False))
    0.5
    """
    mech = mechanism_for(game, mechanism)
    i = player_index(game, player)
    bids = check_supertypes(game, supertype_bids)
    theta_i = _own_pmf(game, i, true_supertype, "true_supertype")
    kern = np.array(kernel, dtype=float)
    k = int(game.type_counts[i])
    if kern.shape != (k, k):
        raise ValueError(f"kernel must have shape ({k}, {k}), got {kern.shape}")
    for t in range(k):
        _pmf(kern[t], k, f"kernel row {t}")
    pi = theta_i[:, None] * kern
    if mech.penalize and np.abs(pi.sum(axis=0) - bids[i, :k]).max() > MARGINAL_TOLERANCE:
        return -math.inf
    payoffs = np.asarray(game.deviation_payoffs(bids, i), dtype=float)
    pieces = _pieces(game, i, theta_i, bids)
    welfare, without, nu = pieces[:3]
    first = welfare - without - nu if mech.first_stage_payment else 0.0
    truthful = pieces[3] - without if mech.first_stage_payment else pieces[4]
    utility = float((pi * (payoffs - np.diag(payoffs)[None, :])).sum()) + nu + first
    return utility - truthful


# ---------------------------------------------------------------------------------------------
# deviations that need history: common randomness, yesterday's type, the window exploit
# ---------------------------------------------------------------------------------------------
_MASK64 = (1 << 64) - 1
