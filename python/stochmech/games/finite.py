"""A two-stage game given by finite tables, with rules that maximize welfare by enumeration.

``FiniteGame(valuations, cost)`` takes ``valuations[i, t, a, b] = v_i(t, a, b)`` for player i of
type t under first-stage outcome a and second-stage outcome b, and ``cost[a, b] = c(a, b)``.
Its decision rules are the welfare maximizers of eq. (1):

* g2*(a, delta) = argmax_b  sum_i v_i(delta_i, a, b) - c(a, b)   (pointwise; ties: smallest b)
* g1*(theta)    = argmax_a  E_{delta~theta}[ max_b sum_i v_i(delta_i, a, b) - c(a, b) ]
  (ties: smallest a)

Values within a relative 1e-12 of the maximum count as ties, so that rounding in the sums
(0.1 + 0.2 against 0.3) does not decide between outcomes of equal welfare.

Expectations over Delta^n are computed exactly by enumerating the profiles while K^n stays
below ``max_profiles``; beyond it the caller must ask for Monte Carlo explicitly
(``expectation="monte-carlo"``), and every expectation then comes back as an :class:`Estimate`
carrying its standard error. Nothing is ever approximated silently.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from stochmech._ragged import check_dense_size, check_type_counts, pad_pmfs
from stochmech._seeding import SeedLike, normalize_seed, seed_sequence
from stochmech._validate import integer
from stochmech.games.base import TwoStageGame

__all__ = ["Estimate", "FiniteGame"]

_CHUNK = 1 << 16
#: relative tolerance under which two welfare values count as a tie (smallest index wins)
TIE_TOLERANCE = 1e-12


def _first_max(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """Index of the first entry within TIE_TOLERANCE (relative) of the maximum along ``axis``."""
    top = values.max(axis=axis, keepdims=True)
    near = values >= top - TIE_TOLERANCE * np.maximum(1.0, np.abs(top))
    return np.argmax(near, axis=axis)


class Estimate(float):
    """A Monte Carlo estimate: a float that also carries its standard error ``stderr``.

    Examples
    --------
    >>> e = Estimate(1.5, 0.01)
    >>> e + 1, e.stderr
    (2.5, 0.01)
    """

    stderr: float

    def __new__(cls, value: float, stderr: float) -> Estimate:
        obj = super().__new__(cls, value)
        obj.stderr = float(stderr)
        return obj

    def __repr__(self) -> str:
        return f"Estimate({float(self)!r}, stderr={self.stderr!r})"

    def __reduce__(self) -> tuple[Any, tuple[float, float]]:
        return (Estimate, (float(self), self.stderr))


def _finite_array(x: Any, ndim: int, what: str) -> np.ndarray:
    try:
        arr = np.array(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what} must be a numeric array: {err}") from None
    if arr.ndim != ndim or 0 in arr.shape:
        raise ValueError(f"{what} must be a non-empty {ndim}-D array, got shape {arr.shape}")
    bad = np.argwhere(~np.isfinite(arr))
    if bad.size:
        idx = tuple(int(j) for j in bad[0])
        where = ", ".join(map(str, idx))
        raise ValueError(f"{what}[{where}] is {float(arr[idx])!r}; every entry must be finite")
    return arr


def _is_ragged_list(x: Any) -> bool:
    """A list or tuple of per-player arrays (not one rectangular array)."""
    if isinstance(x, np.ndarray) or not isinstance(x, Sequence) or isinstance(x, (str, bytes)):
        return False
    shapes = {np.shape(row) for row in x}
    return len(shapes) > 1


def _valuation_tables(valuations: Any, cost: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Padded (n, K, A, B) valuations, type counts K_i and cost (A, B) from the input."""
    c = _finite_array(cost, 2, "cost")
    a, b = c.shape
    if _is_ragged_list(valuations):
        rows = [_finite_array(v, 3, f"valuations[{i}]") for i, v in enumerate(valuations)]
        for i, r in enumerate(rows):
            if r.shape[1:] != (a, b):
                raise ValueError(
                    f"valuations[{i}] must have shape (K_{i}, A, B) with (A, B) = {(a, b)} "
                    f"from cost, got {r.shape}"
                )
        counts = check_type_counts(np.array([r.shape[0] for r in rows]))
        k = int(counts.max())
        check_dense_size(len(rows), k * a * b, "valuations")
        v = np.zeros((len(rows), k, a, b))
        for i, r in enumerate(rows):
            v[i, : r.shape[0]] = r
        return v, counts, c
    v = _finite_array(valuations, 4, "valuations")
    if v.shape[2:] != (a, b):
        raise ValueError(
            f"cost must have shape (A, B) = {v.shape[2:]} to match valuations {v.shape}, "
            f"got {c.shape}"
        )
    counts = np.full(v.shape[0], v.shape[1], dtype=np.int64)
    counts.setflags(write=False)
    return v, counts, c


class FiniteGame(TwoStageGame):
    """A finite two-stage stochastic game (first paper, Section II) given by tables.

    Parameters
    ----------
    valuations : array_like, shape (n, K, A, B), or sequence of n arrays of shape (K_i, A, B)
        ``v_i(t, a, b)``: valuation of player i of type t under outcomes (a, b). A sequence
        gives each player its own type space of K_i >= 1 types.
    cost : array_like, shape (A, B)
        Planner's cost ``c(a, b)``.
    type_values : array_like, shape (K,), or sequence of n arrays of shape (K_i,), optional
        Numeric value carried by each type index (for reports and plots only); a sequence
        gives each player's own values.
    expectation : {"exact", "monte-carlo"}, default "exact"
        How expectations over the profiles are computed. "exact" enumerates all prod K_i
        profiles and refuses when their number exceeds ``max_profiles``; "monte-carlo" averages
        ``samples`` IID profiles (seeded by ``seed``) and returns :class:`Estimate` values.
    samples : int, default 200_000
        Monte Carlo sample size.
    seed : int, numpy.random.SeedSequence or numpy.random.Generator, default 0
        Seed of the Monte Carlo samples (the same for every expectation: common random numbers).
    max_profiles : int, default 2**20
        Largest number of profiles prod K_i enumerated exactly.

    Examples
    --------
    A planner chooses a capacity a in {0, 1} (cost 0 or 1) and whether to serve b in {0, 1};
    serving is only possible with capacity, and each player's value of service is its type.

    >>> n, K = 2, 2
    >>> v = np.zeros((n, K, 2, 2))
    >>> v[:, :, 1, 1] = [[0.0, 2.0], [0.0, 2.0]]
    >>> cost = np.array([[0.0, 9.0], [1.0, 1.0]])
    >>> game = FiniteGame(v, cost)
    >>> theta = np.array([[0.5, 0.5], [0.5, 0.5]])
    >>> game.first_stage(theta), game.optimal_welfare(theta)
    (1, 1.0)
    """

    def __init__(
        self,
        valuations: Any,
        cost: Any,
        *,
        type_values: Any = None,
        expectation: str = "exact",
        samples: int = 200_000,
        seed: SeedLike = 0,
        max_profiles: int = 1 << 20,
    ) -> None:
        v, counts, c = _valuation_tables(valuations, cost)
        n, k, a, b = v.shape
        if expectation not in ("exact", "monte-carlo"):
            raise ValueError(f"expectation must be 'exact' or 'monte-carlo', got {expectation!r}")
        samples = integer(samples, "samples", minimum=2, maximum=1 << 40)
        seed = normalize_seed(seed)
        max_profiles = integer(max_profiles, "max_profiles", minimum=1)
        # every welfare value and payment is a sum of at most n valuations and one cost, and a
        # payment a difference of three such sums: refuse tables for which that overflows
        with np.errstate(over="ignore"):
            bound = float(np.abs(v).max(axis=(1, 2, 3)).sum() + np.abs(c).max())
            four = 4.0 * bound
        if not np.isfinite(four):
            raise ValueError(
                "valuations and cost are too large: sums of valuations and costs overflow to "
                f"infinity (sum of the largest magnitudes = {bound!r})"
            )
        self.valuation_table = v
        self.cost_table = c
        self.n_players = n
        self.n_types = k
        self.n_first = a
        self.n_second = b
        if np.any(counts != k):
            self._type_counts = counts
        if type_values is not None:
            self._set_type_values(type_values, counts)
        self.expectation = expectation
        self.samples = samples
        self.seed = seed
        self.max_profiles = max_profiles
        self._cache: dict[tuple[Any, ...], Any] = {}

    def _set_type_values(self, type_values: Any, counts: np.ndarray) -> None:
        k = self.n_types
        if not _is_ragged_list(type_values):
            tv = _finite_array(type_values, 1, "type_values")
            if tv.shape != (k,):
                raise ValueError(f"type_values must have shape ({k},), got {tv.shape}")
            if self._type_counts is None:
                self.type_values = tv
                return
            type_values = [tv[: int(c)] for c in counts]
        if len(type_values) != self.n_players:
            raise ValueError(
                f"type_values must hold one array per player ({self.n_players}), "
                f"got {len(type_values)}"
            )
        rows = []
        for i, row in enumerate(type_values):
            r = _finite_array(row, 1, f"type_values[{i}]")
            if r.shape != (int(counts[i]),):
                raise ValueError(
                    f"type_values[{i}] must have shape ({int(counts[i])},), got {r.shape}"
                )
            r.setflags(write=False)
            rows.append(r)
        self._player_values = tuple(rows)

    def __repr__(self) -> str:
        return (
            f"FiniteGame(n_players={self.n_players}, n_types={self.n_types}, "
            f"first_stage_outcomes={self.n_first}, second_stage_outcomes={self.n_second}, "
            f"expectation={self.expectation!r})"
        )

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_cache"] = {}
        return state

    # ----- validation -----
    def check_supertypes(self, supertypes: Any, players: np.ndarray | None = None) -> np.ndarray:
        """Validates pmfs for ``players`` (default: all); the padded (m, K) float64 array."""
        counts = self.type_counts if players is None else self.type_counts[players]
        theta = pad_pmfs(supertypes, counts, "supertypes")
        if theta.shape[1] != self.n_types:
            theta = np.pad(theta, ((0, 0), (0, self.n_types - theta.shape[1])))
        return theta

    def _check_types(self, types: Any) -> np.ndarray:
        arr = np.asarray(types)
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[1] != self.n_players:
            raise ValueError(
                f"types must be an (L, n) integer array with n = {self.n_players}, "
                f"got shape {arr.shape}"
            )
        if not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"types must be integer type indices, got dtype {arr.dtype}")
        counts = self.type_counts
        bad = np.argwhere((arr < 0) | (arr >= counts[None, :]))
        if bad.size:
            row, i = (int(x) for x in bad[0])
            raise ValueError(
                f"type {int(arr[row, i])} of player {i} (row {row}) is outside its type space "
                f"[0, {int(counts[i]) - 1}]"
            )
        return arr

    def _check_o1(self, o1: Any) -> int:
        a = integer(o1, "first-stage outcome o1")
        if not 0 <= a < self.n_first:
            raise ValueError(f"first-stage outcome {o1!r} is outside [0, {self.n_first - 1}]")
        return a

    def _check_o2(self, o2: Any) -> np.ndarray:
        arr = np.asarray(o2).reshape(-1)
        if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"second-stage outcomes o2 must be integers, got dtype {arr.dtype}")
        bad = np.flatnonzero((arr < 0) | (arr >= self.n_second))
        if bad.size:
            raise ValueError(
                f"second-stage outcome o2[{int(bad[0])}] = {int(arr[bad[0]])} is outside "
                f"[0, {self.n_second - 1}]"
            )
        return arr.astype(np.int64)

    # ----- per-day rules -----
    def _welfare_by_b(self, players: np.ndarray, profiles: np.ndarray, a: int) -> np.ndarray:
        """(P, B): sum over ``players`` of v_i(profile_i, a, b) minus c(a, b)."""
        total = -np.broadcast_to(self.cost_table[a], (profiles.shape[0], self.n_second)).copy()
        for col, i in enumerate(players):
            total += self.valuation_table[i, profiles[:, col], a, :]
        return total

    def second_stage(self, o1: Any, types: np.ndarray, states: Any = None) -> np.ndarray:
        """g2*(o1, delta) for each row of ``types`` (ties broken toward the smallest b)."""
        a = self._check_o1(o1)
        types = self._check_types(types)
        return _first_max(self._welfare_by_b(np.arange(self.n_players), types, a), axis=1)

    def valuations(
        self, types: np.ndarray, o1: Any, o2: np.ndarray, states: Any = None
    ) -> np.ndarray:
        a = self._check_o1(o1)
        types = self._check_types(types)
        o2 = self._check_o2(o2)
        if o2.shape[0] != types.shape[0]:
            raise ValueError(f"o2 has {o2.shape[0]} days but types have {types.shape[0]}")
        return self.valuation_table[np.arange(self.n_players), types, a, o2[:, None]]

    def cost(self, o1: Any, o2: np.ndarray, states: Any = None) -> np.ndarray:
        a = self._check_o1(o1)
        return self.cost_table[a, self._check_o2(o2)]

    # ----- expectations -----
    def _expect(
        self, theta: np.ndarray, fn: Callable[[np.ndarray], np.ndarray], players: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """E[fn(profile)] over profiles ~ prod of the rows of theta; (value, stderr or None).

        Row j of ``theta`` is the pmf of player ``players[j]`` (padded beyond its K_i);
        ``fn`` maps a (P, m) int array of profiles to a (P, ...) array.
        """
        m = theta.shape[0]
        counts = self.type_counts[players]
        if self.expectation == "monte-carlo" and m > 0:
            rng = np.random.default_rng(seed_sequence(self.seed))
            cdf = np.cumsum(theta, axis=1)
            cdf[np.arange(theta.shape[1])[None, :] >= counts[:, None] - 1] = 1.0
            u = rng.random((self.samples, m))
            profiles = np.stack(
                [np.searchsorted(cdf[j], u[:, j], side="right") for j in range(m)], axis=1
            )
            profiles = np.minimum(profiles, counts[None, :] - 1)
            values = fn(profiles)
            mean = values.mean(axis=0)
            se = values.std(axis=0, ddof=1) / np.sqrt(self.samples)
            return mean, se
        total_profiles = math.prod(int(c) for c in counts)
        if total_profiles > self.max_profiles:
            if np.all(counts == counts[0]):
                sizes = f"K^n = {int(counts[0])}^{m}"
            else:
                sizes = "prod K_i = " + " x ".join(str(int(c)) for c in counts[:6])
                sizes += " x ..." if m > 6 else ""
            raise ValueError(
                f"exact expectations enumerate {sizes} = {total_profiles} profiles, "
                f"above max_profiles = {self.max_profiles}; build the game with "
                "expectation='monte-carlo' (estimates come with standard errors) or raise "
                "max_profiles"
            )
        acc: np.ndarray | float = 0.0
        for start in range(0, total_profiles, _CHUNK):
            idx = np.arange(start, min(start + _CHUNK, total_profiles))
            profiles = np.empty((idx.size, m), dtype=np.int64)
            rest = idx.copy()
            for j in range(m):
                profiles[:, j] = rest % counts[j]
                rest //= counts[j]
            probs = np.prod(theta[np.arange(m), profiles], axis=1) if m else np.ones(idx.size)
            values = fn(profiles)
            acc = acc + np.tensordot(probs, values, axes=(0, 0))
        return np.asarray(acc), None

    def _wrap(self, value: np.ndarray, se: np.ndarray | None) -> Any:
        if se is None:
            return float(value) if np.ndim(value) == 0 else np.asarray(value, dtype=float)
        if np.ndim(value) == 0:
            return Estimate(float(value), float(se))
        return np.array(
            [Estimate(float(v), float(s)) for v, s in zip(value, se, strict=False)], dtype=object
        )

    def _first_stage_values(self, theta: np.ndarray, players: np.ndarray) -> tuple[Any, Any]:
        """E[max_b welfare] for every a, restricted to ``players``."""
        key = ("g1", theta.tobytes(), players.tobytes())
        if key not in self._cache:

            def per_a(profiles: np.ndarray) -> np.ndarray:
                return np.stack(
                    [
                        self._welfare_by_b(players, profiles, a).max(axis=1)
                        for a in range(self.n_first)
                    ],
                    axis=1,
                )

            self._cache[key] = self._expect(theta, per_a, players)
        return self._cache[key]

    def first_stage(self, supertypes: np.ndarray) -> int:
        """g1*(theta): the first-stage outcome maximizing expected welfare (smallest on ties)."""
        theta = self.check_supertypes(supertypes)
        values, _ = self._first_stage_values(theta, np.arange(self.n_players))
        return int(_first_max(np.asarray(values, dtype=float)))

    def optimal_welfare(self, supertypes: np.ndarray) -> float:
        theta = self.check_supertypes(supertypes)
        values, se = self._first_stage_values(theta, np.arange(self.n_players))
        a = int(_first_max(np.asarray(values, dtype=float)))
        return self._wrap(values[a], None if se is None else se[a])

    def optimal_welfare_without(self, supertypes: np.ndarray, player: int) -> float:
        theta = self.check_supertypes(supertypes)
        i = self._check_player(player)
        others = np.delete(np.arange(self.n_players), i)
        values, se = self._first_stage_values(theta[others], others)
        a = int(_first_max(np.asarray(values, dtype=float)))
        return self._wrap(values[a], None if se is None else se[a])

    def _check_player(self, player: int) -> int:
        i = int(player)
        if not 0 <= i < self.n_players:
            raise ValueError(f"player {player!r} does not exist (n = {self.n_players})")
        return i

    def expected_valuations(self, supertypes: np.ndarray) -> np.ndarray:
        theta = self.check_supertypes(supertypes)
        a = self.first_stage(theta)
        everyone = np.arange(self.n_players)

        def own_values(profiles: np.ndarray) -> np.ndarray:
            b = _first_max(self._welfare_by_b(everyone, profiles, a), axis=1)
            return self.valuation_table[everyone, profiles, a, b[:, None]]

        value, se = self._expect(theta, own_values, everyone)
        return self._wrap(value, se)

    def deviation_payoffs(self, supertype_bids: np.ndarray, player: int) -> np.ndarray:
        theta = self.check_supertypes(supertype_bids)
        i = self._check_player(player)
        a = self.first_stage(theta)
        others = np.delete(np.arange(self.n_players), i)
        everyone = np.arange(self.n_players)
        k = int(self.type_counts[i])

        def table(profiles: np.ndarray) -> np.ndarray:
            out = np.empty((profiles.shape[0], k, k))
            full = np.empty((profiles.shape[0], self.n_players), dtype=np.int64)
            full[:, others] = profiles
            for s in range(k):
                full[:, i] = s
                b = _first_max(self._welfare_by_b(everyone, full, a), axis=1)
                out[:, :, s] = self.valuation_table[i, :k, a, :][:, b].T
            return out

        # with Monte Carlo expectations this table is an estimate (its errors are not kept)
        value, _ = self._expect(theta[others], table, others)
        return np.asarray(value, dtype=float)
