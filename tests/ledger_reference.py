"""A plain, dense reference for :class:`stochmech.BidLedger`, written straight from the paper.

Everything here follows eqs. (6), (8), (11) and (13) of the two-stage repeated stochastic game
paper literally, over the whole of Delta^n, with no pruning, no heaps and no scaled statistics:

* ``N_i(t)``: days on which player i bid t; ``f_i,t(l) = N_i(t)/l - theta_i(t)`` (eq. 6);
* ``J(d)``: days whose whole bid profile is d, kept as a dense array of shape
  (K_0, ..., K_{n-1}) (each player has its own number of types K_i >= 1);
  ``M_i(d_-i)`` is J summed over axis i, and
  ``h_i,d(l) = J(d)/l - theta_i(d_i) * (M_i(d_-i)/l)`` (eq. 8);
* ``r(l) = sqrt(ln(2 l^(1+gamma)) / (2 l))`` (eq. 11), computed with Python floats (the same
  libm as the Rust core);
* ``E_i(l) = {max_t |f_i,t(l)| >= r(l) or max_d |h_i,d(l)| >= r(l)}`` (eq. 13).

The floating-point expressions are the ones the core evaluates when it decides a flag exactly,
so the tests may demand identical flags and identical marginal maxima. The cost is
O(n prod_i K_i) per day: keep n and the K_i small.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def window(day: int, gamma: float = 1.0) -> float:
    """r(l) of eq. (11) for day ``l >= 1``, as a Python float."""
    return math.sqrt(math.log(2 * day ** (1 + gamma)) / (2 * day))


@dataclass(frozen=True)
class DenseRecord:
    """Per-day outputs of :meth:`DenseLedger.record`, each of shape (L, n) (``days``: (L,))."""

    days: np.ndarray
    flags: np.ndarray
    marginal: np.ndarray
    joint: np.ndarray


class DenseLedger:
    """Dense-array bid ledger (the definitions of eqs. 6, 8, 11 and 13, nothing more).

    Parameters
    ----------
    supertypes : array_like, shape (n, K), or sequence of n 1-D pmfs of lengths K_i
        Declared pmfs theta_hat_i (not validated: this is a reference, not an API).
    gamma : float
        Window exponent of eq. (11).
    """

    def __init__(self, supertypes: np.ndarray, gamma: float = 1.0) -> None:
        self.thetas = [np.asarray(row, dtype=np.float64) for row in supertypes]
        self.ks = tuple(int(row.size) for row in self.thetas)
        self.n = len(self.ks)
        self.k = max(self.ks)
        self.uniform = len(set(self.ks)) == 1
        self.gamma = float(gamma)
        self.day = 0
        self.count_rows = [np.zeros(k, dtype=np.int64) for k in self.ks]  # N_i(t)
        self.joint_counts = np.zeros(self.ks, dtype=np.int64)  # J(d)

    def _shaped(self, rows: list[np.ndarray]) -> np.ndarray | list[np.ndarray]:
        return np.array(rows) if self.uniform else rows

    @property
    def theta(self) -> np.ndarray | list[np.ndarray]:
        """The supertypes: (n, K) when every K_i is K, a list of pmfs otherwise."""
        return self._shaped(self.thetas)

    @property
    def counts(self) -> np.ndarray | list[np.ndarray]:
        """N_i(t), shaped as :attr:`theta`."""
        return self._shaped(self.count_rows)

    def add(self, profile: np.ndarray) -> None:
        """Adds one day whose bid profile is ``profile`` (n integers in 0..K-1)."""
        self.day += 1
        for i, t in enumerate(profile):
            self.count_rows[i][int(t)] += 1
        self.joint_counts[tuple(int(t) for t in profile)] += 1

    def group_counts(self, player: int) -> np.ndarray:
        """M_i(d_-i) broadcast over Delta^n: J summed over axis ``player``, kept as an axis."""
        return self.joint_counts.sum(axis=player, keepdims=True)

    def marginal_table(self) -> np.ndarray | list[np.ndarray]:
        """f_i,t(l) of eq. (6), shaped as :attr:`theta`."""
        return self._shaped(
            [c / self.day - th for c, th in zip(self.count_rows, self.thetas, strict=True)]
        )

    def joint_table(self, player: int) -> np.ndarray:
        """h_i,d(l) of eq. (8) for every d in Delta^n, shape (K_0, ..., K_{n-1})."""
        day = self.day
        shape = [1] * self.n
        shape[player] = self.ks[player]
        theta_i = self.thetas[player].reshape(shape)
        return self.joint_counts / day - theta_i * (self.group_counts(player) / day)

    def marginal_max(self) -> np.ndarray:
        """max_t |f_i,t(l)| per player, shape (n,)."""
        return np.array(
            [
                np.abs(c / self.day - th).max()
                for c, th in zip(self.count_rows, self.thetas, strict=True)
            ]
        )

    def joint_max(self) -> np.ndarray:
        """max over Delta^n of |h_i,d(l)| per player, shape (n,)."""
        return np.array([np.abs(self.joint_table(i)).max() for i in range(self.n)])

    def flags(self) -> np.ndarray:
        """E_i(l) of eq. (13) for the current day, shape (n,)."""
        r = window(self.day, self.gamma)
        return (self.marginal_max() >= r) | (self.joint_max() >= r)

    def record(self, bids: np.ndarray) -> DenseRecord:
        """Records the days of ``bids`` (L, n) one by one and returns every day's statistics."""
        bids = np.asarray(bids)
        rows = bids.shape[0]
        days = np.arange(self.day + 1, self.day + 1 + rows, dtype=np.int64)
        flags = np.zeros((rows, self.n), dtype=bool)
        marginal = np.zeros((rows, self.n))
        joint = np.zeros((rows, self.n))
        for row, profile in enumerate(bids):
            self.add(profile)
            r = window(self.day, self.gamma)
            marginal[row] = self.marginal_max()
            joint[row] = self.joint_max()
            flags[row] = (marginal[row] >= r) | (joint[row] >= r)
        return DenseRecord(days=days, flags=flags, marginal=marginal, joint=joint)

    def profile_counts(self) -> dict[tuple[int, ...], int]:
        """The profiles d with J(d) > 0 and their counts."""
        return {
            tuple(int(x) for x in d): int(self.joint_counts[tuple(d)])
            for d in np.argwhere(self.joint_counts > 0)
        }

    def groups_seen(self) -> np.ndarray:
        """Number of groups d_-i with M_i(d_-i) > 0, per player."""
        return np.array([int((self.group_counts(i) > 0).sum()) for i in range(self.n)])

    def group_maxima(self, player: int) -> dict[tuple[int, ...], tuple[int, float]]:
        """For each group d_-i seen (M > 0): the type t with the largest |h_i,(t, d_-i)| (the
        smallest such t on ties) and that h. Groups are keyed by d with d_i set to 0."""
        h = np.moveaxis(self.joint_table(player), player, -1)  # (..., K) with t last
        m = np.moveaxis(self.group_counts(player), player, -1)[..., 0]
        out = {}
        for rest in np.argwhere(m > 0):
            values = h[tuple(rest)]
            t = int(np.argmax(np.abs(values)))
            key = [int(x) for x in rest]
            key.insert(player, 0)
            out[tuple(key)] = (t, float(values[t]))
        return out
