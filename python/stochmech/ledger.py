"""The bid ledger: running statistics of the type bids and the penalty events of the mechanism.

Every day of the DNBE mechanism passes through a :class:`BidLedger`. It compares the players'
type bids with their declared supertypes through

* the running frequency discrepancy of eq. (6),
  ``f_i,t(l) = N_i(t)/l - theta_i(t)``, where ``N_i(t)`` counts the days player i bid t;
* the joint-independence discrepancy of eq. (8),
  ``h_i,d(l) = J(d)/l - theta_i(d_i) M_i(d_-i)/l`` for every profile d in Delta^n, where J(d)
  counts the days whose whole bid profile is d and ``M_i(d_-i)`` those whose profile without i
  is d_-i;

and raises the penalty event of eq. (13), ``E_i(l) = {max_t |f_i,t(l)| >= r(l) or
max_d |h_i,d(l)| >= r(l)}``, with the window ``r(l) = sqrt(ln(2 l^(1+gamma)) / (2 l))`` of
eq. (11). A flagged player pays the penalty ``J_p(l)`` of eq. (12) that day.

The statistics are computed exactly (flags equal the dense definitions bit for bit) by a Rust
core whose cost per day does not depend on K^n.
"""

from __future__ import annotations

import functools
import json
import math
import os
import struct
import threading
import zlib
from collections.abc import Callable
from dataclasses import FrozenInstanceError, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stochmech import _core
from stochmech._display import fmt_array, html_table, pandas, short_repr
from stochmech._persist import write_atomically
from stochmech._validate import penalty_schedule, penalty_values
from stochmech._window import DEFAULT_GAMMA, window

__all__ = ["BidLedger", "LedgerRecord", "PowerPenalty"]

_FILE_MAGIC = b"STOCHMECH-LEDGER\n"
# 2: per-player type spaces in the core state (the container is unchanged; files of version 1
# hold a version-1 core state, which the core still reads)
_FILE_VERSION = 2
_FILE_VERSIONS_READ = (1, 2)


@dataclass(frozen=True)
class PowerPenalty:
    """Penalty schedule ``J_p(l) = scale * l**exponent`` of eq. (12).

    Eq. (12) asks ``J_p(l) >= 0`` with ``J_p(l) / l -> infinity``, so ``exponent > 1``.
    The default ``l**1.5`` is the library's default schedule.

    Examples
    --------
    >>> PowerPenalty()(np.array([1, 4, 100]))
    array([   1.,    8., 1000.])
    """

    scale: float = 1.0
    exponent: float = 1.5

    def __post_init__(self) -> None:
        from stochmech._validate import finite

        finite(self.scale, "penalty scale")
        finite(self.exponent, "penalty exponent")
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"penalty scale must be a finite number > 0, got {self.scale!r}")
        if not (math.isfinite(self.exponent) and self.exponent > 1):
            raise ValueError(
                "penalty exponent must be finite and > 1 so that J_p(l)/l -> infinity "
                f"(eq. 12), got {self.exponent!r}"
            )

    def __call__(self, days: np.ndarray) -> np.ndarray:
        return self.scale * np.asarray(days, dtype=np.float64) ** self.exponent

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "power", "scale": self.scale, "exponent": self.exponent}


PenaltySchedule = Callable[[np.ndarray], np.ndarray]


class LedgerRecord:
    """What :meth:`BidLedger.record` returns for a batch of L days and n players.

    Attributes
    ----------
    days : (L,) int64
        Day numbers l (1-based, continuing across calls).
    flags : (L, n) bool
        The penalty event E_i(l) of eq. (13).
    penalty : (L, n) float64
        ``J_p(l) * flags``: the penalty each player pays that day.
    window : (L,) float64
        r(l) of eq. (11), computed on first access (from ``days`` and ``gamma``) unless given.
    marginal, joint : (L, n) float64 or None
        With ``detail=True``: ``max_t |f_i,t(l)|`` and ``max_{d in Delta^n} |h_i,d(l)|``.

    A record is read-only: setting an attribute raises ``dataclasses.FrozenInstanceError``.

    Examples
    --------
    >>> rec = LedgerRecord(np.array([1, 2]), np.zeros((2, 1), bool), np.zeros((2, 1)))
    >>> rec.window.round(4).tolist()
    [0.5887, 0.6582]
    """

    __slots__ = ("_gamma", "_penalty", "_schedule", "_window", "days", "flags", "joint", "marginal")
    _gamma: float
    _window: np.ndarray | None
    days: np.ndarray
    flags: np.ndarray
    _penalty: np.ndarray | None
    marginal: np.ndarray | None
    joint: np.ndarray | None
    _schedule: np.ndarray | Callable[[], np.ndarray] | None

    def __init__(
        self,
        days: np.ndarray,
        flags: np.ndarray,
        penalty: np.ndarray | None,
        window: np.ndarray | None = None,
        marginal: np.ndarray | None = None,
        joint: np.ndarray | None = None,
        *,
        gamma: float = 0.5,
        schedule: np.ndarray | Callable[[], np.ndarray] | None = None,
    ) -> None:
        if penalty is None and schedule is None:
            raise ValueError("a LedgerRecord needs its penalties or the schedule of its days")
        values = {
            "_gamma": gamma,
            "_penalty": penalty,
            "_schedule": schedule,
            "_window": window,
            "days": days,
            "flags": flags,
            "joint": joint,
            "marginal": marginal,
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)

    @property
    def penalty(self) -> np.ndarray:
        """``J_p(l) * flags`` (computed on first access when the record holds the schedule)."""
        p = self._penalty
        if p is None:
            schedule = self._schedule
            assert schedule is not None
            values = schedule() if callable(schedule) else schedule
            p = np.where(self.flags, values[:, None], 0.0)
            object.__setattr__(self, "_penalty", p)
        return p

    @property
    def window(self) -> np.ndarray:
        """r(l) of eq. (11) on each day of the record (computed by the Rust core once)."""
        w = self._window
        if w is None:
            w = window(self.days, self._gamma)
            object.__setattr__(self, "_window", w)
        return w

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __reduce__(self) -> tuple[Any, ...]:
        args = (self.days, self.flags, self.penalty, self.window, self.marginal, self.joint)
        return (LedgerRecord, args)

    def _lines(self) -> list[tuple[str, Any]]:
        days = self.days
        span = f"{int(days[0]):,}..{int(days[-1]):,}" if days.size else "none"
        return [
            ("days", span),
            ("penalty days", fmt_array(self.flags.sum(axis=0))),
            ("total penalty", fmt_array(self.penalty.sum(axis=0))),
            ("window r(l)", f"{float(self.window[-1]):.4g} on the last day" if days.size else ""),
        ]

    def __repr__(self) -> str:
        n = self.flags.shape[1] if self.flags.ndim == 2 else 0
        return short_repr(f"LedgerRecord: {self.days.size:,} days, {n} players", self._lines())

    def _repr_html_(self) -> str:
        n = self.flags.shape[1] if self.flags.ndim == 2 else 0
        return html_table(f"LedgerRecord: {self.days.size:,} days, {n} players", self._lines())

    def to_pandas(self) -> Any:
        """One row per day (index ``day``): ``window``, and per player ``flagged_<i>``,
        ``penalty_<i>`` (and ``marginal_<i>``, ``joint_<i>`` with ``detail=True``), as a pandas
        DataFrame (optional extra ``stochmech[pandas]``)."""
        pd = pandas()
        n = self.flags.shape[1]
        data: dict[str, Any] = {"window": self.window}
        data |= {f"flagged_{i}": self.flags[:, i] for i in range(n)}
        data |= {f"penalty_{i}": self.penalty[:, i] for i in range(n)}
        if self.marginal is not None:
            data |= {f"marginal_{i}": self.marginal[:, i] for i in range(n)}
        if self.joint is not None:
            data |= {f"joint_{i}": self.joint[:, i] for i in range(n)}
        return pd.DataFrame(data, index=pd.Index(self.days, name="day"))


def _as_type_spaces(supertypes: Any) -> tuple[np.ndarray, list[int]]:
    """The supertypes as one flat float64 array (player by player) and each player's K_i.

    Accepts an (n, K) array (every player has K types) or a sequence of n one-dimensional
    pmfs of any lengths K_i >= 1.
    """
    rows: list[np.ndarray] | None = None
    try:
        theta = np.array(supertypes, dtype=np.float64, order="C")
    except (TypeError, ValueError) as err:
        if isinstance(supertypes, (str, bytes)) or not hasattr(supertypes, "__len__"):
            raise ValueError(
                f"supertypes must be an (n, K) array or a sequence of pmfs: {err}"
            ) from None
        rows = []
        for i, row in enumerate(supertypes):
            try:
                pmf = np.array(row, dtype=np.float64, order="C")
            except (TypeError, ValueError) as row_err:
                raise ValueError(
                    f"supertype of player {i} is not an array of probabilities: {row_err}"
                ) from None
            if pmf.ndim != 1 or pmf.size == 0:
                raise ValueError(
                    f"supertype of player {i} must be a non-empty 1-D pmf, got shape {pmf.shape}"
                ) from None
            rows.append(pmf)
    if rows is None:
        if theta.dtype == object or theta.ndim != 2 or theta.shape[0] == 0 or theta.shape[1] == 0:
            raise ValueError(
                "supertypes must be a non-empty (n, K) array of pmfs or a sequence of n 1-D "
                f"pmfs, got shape {theta.shape}"
            )
        return theta.ravel(), [int(theta.shape[1])] * int(theta.shape[0])
    if not rows:
        raise ValueError("supertypes must hold at least one player's pmf, got shape (0,)")
    return np.concatenate(rows), [int(r.size) for r in rows]


def _split(flat: np.ndarray, types: tuple[int, ...]) -> np.ndarray | list[np.ndarray]:
    """Per-player rows of a flat array: (n, K) when every K_i is K, a list otherwise."""
    if len(set(types)) == 1:
        return flat.reshape(len(types), types[0])
    return np.split(flat, np.cumsum(types)[:-1])


class BidLedger:
    """Running frequency and joint-independence statistics of type bids, with penalties.

    Parameters
    ----------
    supertypes : array_like, shape (n, K), or sequence of n 1-D array_like
        The declared supertypes theta_hat: one pmf per player over that player's own types
        0..K_i-1 (an (n, K) array when every player has K types; a sequence of pmfs of
        different lengths otherwise; K_i = 1 is allowed). Each pmf must be non-negative,
        finite and sum to 1 within 1e-9.
    gamma : float, default 1.0
        Exponent of the window r(l) = sqrt(ln(2 l^(1+gamma)) / (2 l)) (eq. 11); > 0.
    penalty : PowerPenalty or callable, optional
        Penalty schedule J_p(l) (eq. 12): a :class:`PowerPenalty` (default ``l**1.5``) or a
        vectorized callable mapping an int64 array of days to non-negative penalties.

    Notes
    -----
    There is no fixed limit on the number of players or of types (a player may have up to
    2^32 - 1 types): memory is the only limit, and a ledger, a batch or a request for exact
    maxima that cannot fit in the memory available is refused with a ``ValueError`` before
    anything large is allocated. Profiles are stored exactly (each distinct profile once, as
    its packed mixed-radix key); hashing only locates them, so a hash collision can never
    merge two profiles. The cost of a day is O(n (K_i + log G)) at most, with G the number of
    distinct profiles seen, and far less in the common case: a day that asks only for flags
    touches one large table once (profiles of up to 512 key bits) or a few small ones
    (longer profiles). A player with a single type is never flagged (its statistics are
    exactly zero). Asking for ``detail=True`` makes the ledger keep every profile group
    (grouped by count vector) from then on, which costs more memory (about 0.2 GB per 10^6
    days at n = 10, K = 5; about n times the days in group entries in general) and time.

    All methods may be called from several threads on one ledger: calls are serialized (each
    takes the ledger's lock with the GIL released), and a call that raises changes nothing.

    When K^(n-1) is much larger than the horizon, almost every profile group is seen about
    once, and the joint test (eq. 8) cannot fire: only the marginal test has power at large n.
    :meth:`groups_seen` shows how many groups each player's test has seen.

    Examples
    --------
    >>> ledger = BidLedger([[0.5, 0.5], [0.2, 0.8]])
    >>> rng = np.random.default_rng(0)
    >>> bids = np.column_stack([rng.integers(0, 2, 1000), (rng.random(1000) < 0.8)])
    >>> result = ledger.record(bids.astype(int))
    >>> ledger.day, result.flags.shape
    (1000, (1000, 2))
    >>> bool(result.flags[-500:].any())  # truthful bids stop being penalized
    False
    """

    def __init__(
        self,
        supertypes: Any,
        *,
        gamma: float = DEFAULT_GAMMA,
        penalty: PowerPenalty | PenaltySchedule | None = None,
    ) -> None:
        from stochmech._validate import finite

        theta, types = _as_type_spaces(supertypes)
        gamma = finite(gamma, "gamma")
        self._core = _core.Ledger(theta, types, gamma)
        self._penalty = penalty_schedule(penalty)
        self._lock = threading.Lock()

    # ----- construction helpers -----
    @classmethod
    def _from_core(cls, core: _core.Ledger, penalty: Any) -> BidLedger:
        obj = cls.__new__(cls)
        obj._core = core
        obj._penalty = penalty_schedule(penalty)
        obj._lock = threading.Lock()
        return obj

    def copy(self) -> BidLedger:
        """An independent copy (same state, same penalty schedule)."""
        return BidLedger._from_core(self._core.__copy__(), self._penalty)

    # ----- properties -----
    @property
    def day(self) -> int:
        """Days recorded so far."""
        return int(self._core.day)

    @property
    def n_players(self) -> int:
        return int(self._core.n_players)

    @property
    def type_counts(self) -> tuple[int, ...]:
        """K_i: the number of types of each player."""
        return tuple(int(k) for k in self._core.type_counts)

    @property
    def n_types(self) -> int:
        """K when every player has K types; the largest K_i otherwise (see :attr:`type_counts`)."""
        return max(self.type_counts)

    @property
    def gamma(self) -> float:
        return float(self._core.gamma)

    @property
    def penalty(self) -> PowerPenalty | PenaltySchedule:
        """The penalty schedule J_p."""
        return self._penalty

    @property
    def supertypes(self) -> np.ndarray | list[np.ndarray]:
        """The declared supertypes (a copy): (n, K) when every player has K types, otherwise a
        list of n pmfs of lengths K_i."""
        return _split(self._core.supertypes(), self.type_counts)

    @property
    def nbytes(self) -> int:
        """Bytes held by the ledger's tables."""
        return int(self._core.nbytes)

    def window(self) -> float:
        """r(l) for the last recorded day l (NaN before the first day)."""
        return window(self.day, self.gamma) if self.day else math.nan

    @property
    def marginal_counts(self) -> np.ndarray | list[np.ndarray]:
        """N_i(t): days on which player i bid t, int64, shaped as :attr:`supertypes`."""
        return _split(self._core.marginal_counts().astype(np.int64), self.type_counts)

    @property
    def marginal_discrepancy(self) -> np.ndarray | list[np.ndarray]:
        """f_i,t(l) = N_i(t)/l - theta_i(t) of eq. (6) for the last day, shaped as
        :attr:`supertypes`."""
        theta = self._core.supertypes()
        if self.day == 0:
            return _split(np.zeros_like(theta), self.type_counts)
        counts = self._core.marginal_counts()
        return _split(counts / float(self.day) - theta, self.type_counts)

    def joint_max(self) -> np.ndarray:
        """max over Delta^n of |h_i,d(l)| (eq. 8) for the last day, per player, (n,)."""
        return self._core.joint_max()

    def joint_discrepancy(self, profile: Any) -> np.ndarray:
        """h_i,d(l) of eq. (8) for one profile d and every player i, (n,)."""
        d = np.asarray(profile)
        if d.shape != (self.n_players,) or not np.issubdtype(d.dtype, np.integer):
            raise ValueError(
                f"profile must hold one integer type per player ({self.n_players}), got {profile!r}"
            )
        types = np.array(self.type_counts)
        bad = np.flatnonzero((d < 0) | (d >= types))
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"type {int(d[i])} of player {i} is outside the type space of player {i}, "
                f"0..{int(types[i]) - 1}"
            )
        return self._core.joint_at([int(x) for x in d])

    def worst_profiles(self, player: int, count: int = 5) -> list[tuple[tuple[int, ...], float]]:
        """The profiles d with the largest |h_i,d(l)| for ``player`` (one per group d_-i)."""
        if not 0 <= int(player) < self.n_players:
            raise ValueError(f"player {player!r} does not exist (n = {self.n_players})")
        if int(count) < 0:
            raise ValueError(f"count must be >= 0, got {count!r}")
        return [(tuple(p), v) for p, v in self._core.worst_profiles(int(player), int(count))]

    def profile_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """Distinct bid profiles seen, (G, n) int64, and their counts J(d), (G,) int64."""
        profiles, counts = self._core.profile_counts()
        return profiles.astype(np.int64), counts.astype(np.int64)

    def groups_seen(self) -> np.ndarray:
        """Distinct profiles d_-i seen so far, for each player i (the joint test's groups)."""
        return np.array(self._core.groups_seen(), dtype=np.int64)

    # ----- recording -----
    def _as_bids(self, bids: Any) -> np.ndarray:
        arr = np.asarray(bids)
        if arr.ndim == 1 and arr.shape[0] == self.n_players:
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[1] != self.n_players:
            raise ValueError(
                f"bids must be an (L, n) integer array with n = {self.n_players} columns, "
                f"got shape {arr.shape}"
            )
        if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
            if arr.size and np.issubdtype(arr.dtype, np.floating):
                bad = np.argwhere(~np.isfinite(arr) | (arr != np.round(arr)))
                if bad.size:
                    row, col = (int(x) for x in bad[0])
                    raise ValueError(
                        f"bid {float(arr[row, col])!r} of player {col} on day {self.day + row + 1} "
                        "is not an integer type index"
                    )
            raise ValueError(f"bids must be integer type indices, got dtype {arr.dtype}")
        if arr.dtype != np.int64:
            if arr.dtype == np.uint64 and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
                row, col = (int(x) for x in np.argwhere(arr > np.iinfo(np.int64).max)[0])
                raise ValueError(
                    f"bid {int(arr[row, col])} of player {col} on day {self.day + row + 1} "
                    f"is outside the type space of player {col}, 0..{self.type_counts[col] - 1}"
                )
            arr = arr.astype(np.int64)
        return np.ascontiguousarray(arr)

    def check(self, bids: Any) -> None:
        """Validates a batch of bids without recording it (raises ``ValueError``)."""
        self._core.check_bids(self._as_bids(bids))

    def record(self, bids: Any, detail: bool = False) -> LedgerRecord:
        """Records a batch of days of type bids, in order.

        Parameters
        ----------
        bids : array_like of int, shape (L, n) or (n,)
            Type bids, one row per day; day numbers continue across calls.
        detail : bool, default False
            Also return the exact ``max_t |f_i,t(l)|`` and ``max_d |h_i,d(l)|`` per day.

        Returns
        -------
        LedgerRecord

        Raises
        ------
        ValueError
            For a wrong shape or dtype, or a bid outside its player's 0..K_i-1 (the message
            names the player, the day and the value), or a batch that cannot fit in memory.
            The whole batch is validated before anything is recorded:
            after an error the ledger is unchanged.

        Notes
        -----
        The batch runs with the GIL released. Calls on the same ledger from several threads
        are serialized, each ``record`` from reading the day count to recording, so every
        result describes the days its bids were recorded as.
        """
        arr = self._as_bids(bids)
        with self._lock:
            days = np.arange(self.day + 1, self.day + 1 + arr.shape[0], dtype=np.int64)
            penalty = self._penalty
            schedule: np.ndarray | Callable[[], np.ndarray]
            if isinstance(penalty, PowerPenalty):
                # increasing in l: the last day's value bounds them all (checked now), and
                # the schedule is computed when the penalties are first read
                penalty_values(penalty, days[-1:])
                schedule = functools.partial(penalty, days.copy())
            else:
                schedule = penalty_values(penalty, days)
            # validates the whole batch before recording any of it
            flags, marginal, joint = self._core.record(arr, bool(detail))
        return LedgerRecord(
            days=days,
            flags=flags,
            penalty=None,
            schedule=schedule,
            gamma=self.gamma,
            marginal=marginal,
            joint=joint,
        )

    # ----- persistence -----
    def to_bytes(self) -> bytes:
        """The ledger as versioned, checksummed bytes (the penalty schedule if it is a
        :class:`PowerPenalty`; a custom schedule must be given again to :meth:`from_bytes`)."""
        if isinstance(self._penalty, PowerPenalty):
            spec: dict[str, Any] = self._penalty.to_dict()
        else:
            spec = {"kind": "custom", "repr": repr(self._penalty)}
        header = json.dumps({"penalty": spec, "stochmech": _core.__version__}).encode()
        state = self._core.to_bytes()
        body = b"".join(
            [
                _FILE_MAGIC,
                struct.pack("<II", _FILE_VERSION, len(header)),
                header,
                struct.pack("<Q", len(state)),
                state,
            ]
        )
        return body + struct.pack("<I", zlib.crc32(body))

    @classmethod
    def from_bytes(cls, data: bytes, *, penalty: Any = None) -> BidLedger:
        """Restores a ledger from :meth:`to_bytes`.

        A damaged, truncated or foreign byte string raises ``ValueError``; it never yields a
        silently wrong ledger. ``penalty`` is required when the saved ledger used a custom
        schedule, and otherwise overrides the saved one when given.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data must be bytes, got {type(data).__name__}")
        data = bytes(data)
        head = len(_FILE_MAGIC) + 8
        if len(data) < head + 12 or not data.startswith(_FILE_MAGIC):
            raise ValueError("not a stochmech ledger file (bad magic bytes or too short)")
        body, (crc,) = data[:-4], struct.unpack("<I", data[-4:])
        version, header_len = struct.unpack("<II", data[len(_FILE_MAGIC) : head])
        if version not in _FILE_VERSIONS_READ:
            raise ValueError(
                f"ledger file format version {version} is not supported "
                f"(this stochmech reads versions 1 and {_FILE_VERSION})"
            )
        if zlib.crc32(body) != crc:
            raise ValueError("ledger file is corrupted or truncated (checksum mismatch)")
        try:
            header = json.loads(body[head : head + header_len])
            (state_len,) = struct.unpack("<Q", body[head + header_len : head + header_len + 8])
        except (ValueError, struct.error, RecursionError) as err:
            raise ValueError(f"ledger file header is unreadable: {err}") from None
        if not isinstance(header, dict):
            raise ValueError(f"ledger file header is not a JSON object: {header!r:.80}")
        state = body[head + header_len + 8 :]
        if len(state) != state_len:
            raise ValueError("ledger file is truncated (state length mismatch)")
        spec = header.get("penalty")
        if penalty is None:
            penalty = _saved_penalty(spec)
        return cls._from_core(_core.Ledger.from_bytes(state), penalty)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes :meth:`to_bytes` to ``path`` atomically (write then rename)."""
        write_atomically(path, self.to_bytes())

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, penalty: Any = None) -> BidLedger:
        """Reads a ledger written by :meth:`save` (see :meth:`from_bytes`)."""
        return cls.from_bytes(Path(path).read_bytes(), penalty=penalty)

    def __getstate__(self) -> dict[str, Any]:
        return {"core": self._core.to_bytes(), "penalty": self._penalty}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._core = _core.Ledger.from_bytes(state["core"])
        self._penalty = penalty_schedule(state["penalty"])
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        types = self.type_counts
        shown = types[0] if len(set(types)) == 1 else f"{min(types)}..{max(types)}"
        return (
            f"BidLedger(n_players={len(types)}, n_types={shown}, "
            f"gamma={self.gamma}, day={self.day}, penalty={self._penalty!r})"
        )


def _saved_penalty(spec: Any) -> PowerPenalty:
    """The penalty schedule a ledger file's header describes (a ``ValueError`` otherwise)."""
    if not isinstance(spec, dict) or spec.get("kind") != "power":
        saved = spec.get("repr", "?") if isinstance(spec, dict) else "?"
        raise ValueError(
            f"this ledger was saved with a custom penalty schedule ({saved}); "
            "pass it again as penalty="
        )
    try:
        return PowerPenalty(float(spec["scale"]), float(spec["exponent"]))
    except (KeyError, TypeError, ValueError, OverflowError) as err:
        raise ValueError(
            f"ledger file header holds an invalid penalty {spec!r:.80}: {err}"
        ) from None
