"""Exact inverse-CDF draws of every player's type for a batch of days, vectorized over players.

The simulation engine draws player i's type from a uniform ``u`` in [0, 1) as

    ``min(searchsorted(cdf[i], u, side="right"), K_i - 1)``

with ``cdf`` the padded row-wise CDFs of :func:`stochmech._ragged.padded_cdf` (the reference,
:func:`reference_types`, does exactly this, one player at a time). :class:`TypeTable` gives the
same integers for a whole (days, n) block of uniforms in a few vector operations: the unit
interval is cut into M = 2^m buckets of equal width; for each player and bucket the table holds
the smallest type the bucket can give and the CDF values inside the bucket. The bucket of u is
``floor(u * M)`` (exact: M is a power of two), so a type is one table look-up plus one
comparison with each CDF value the bucket holds (the very values the reference compares with):
on a non-decreasing CDF the type is the smallest type of the bucket plus the number of those
values that are <= u. M is the grid, of at most 2^12 buckets and tables of at most 2^17
entries, that needs the fewest comparisons (none when every CDF value falls on a bucket edge,
as with probabilities 1/2^k). A player whose bucket would hold more than four CDF values, or
whose CDF row is not non-decreasing (a pmf summing to slightly more than 1), is drawn by the
reference itself.
"""

from __future__ import annotations

import numpy as np

__all__ = ["TypeTable", "reference_types"]

#: finest bucket grid, 2^12 buckets per player
_MAX_BUCKETS = 1 << 12
#: largest table (players x buckets) held, in entries (8 bytes each, per table: 1 MiB, so
#: that the look-ups stay in a core's cache)
_MAX_ENTRIES = 1 << 17
#: most CDF values one bucket may straddle (one comparison each)
_MAX_STEPS = 4


def reference_types(cdf: np.ndarray, counts: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Types of a (L, n) block of uniforms, one player at a time by binary search (the
    definition :class:`TypeTable` reproduces)."""
    out = np.empty(u.shape, dtype=np.int64)
    for i in range(u.shape[1]):
        top = int(counts[i]) - 1
        out[:, i] = np.minimum(np.searchsorted(cdf[i], u[:, i], side="right"), top)
    return out


class TypeTable:
    """Bucketed inverse-CDF tables of n players (see the module docstring).

    Parameters
    ----------
    cdf : (n, K) float
        Row-wise CDFs, exactly 1 from each player's last type on.
    counts : (n,) int
        The players' numbers of types K_i.

    Examples
    --------
    >>> cdf = np.array([[0.25, 1.0], [0.5, 1.0]])
    >>> table = TypeTable(cdf, np.array([2, 2]))
    >>> u = np.array([[0.1, 0.1], [0.3, 0.7]])
    >>> table.draw(u).tolist(), reference_types(cdf, np.array([2, 2]), u).tolist()
    ([[0, 0], [1, 1]], [[0, 0], [1, 1]])
    """

    def __init__(self, cdf: np.ndarray, counts: np.ndarray) -> None:
        cdf = np.ascontiguousarray(cdf, dtype=np.float64)
        n, width = cdf.shape
        self.cdf = cdf
        self.counts = np.asarray(counts, dtype=np.int64)
        top = self.counts - 1
        monotone = np.all(np.diff(cdf, axis=1) >= 0, axis=1) if width > 1 else np.ones(n, bool)
        # the grid with the fewest comparisons among those whose tables stay small (the
        # coarsest such grid on a tie)
        best: tuple[int, int, np.ndarray, np.ndarray] | None = None
        buckets = 1 << max(4, int(np.ceil(np.log2(max(width, 1)))))
        while best is None or (buckets <= _MAX_BUCKETS and buckets * n <= _MAX_ENTRIES):
            lo, hi = self._bounds(cdf, top, buckets)
            spread = np.where(monotone, (hi - lo).max(axis=1), 0)
            steps = int(spread.max()) if n else 0
            if best is None or steps < best[0]:
                best = (steps, buckets, lo, hi)
            if steps == 0:
                break
            buckets *= 2
        _, buckets, lo, hi = best
        spread = (hi - lo).max(axis=1)
        slow = ~monotone | (spread > _MAX_STEPS)
        self.buckets = buckets
        #: players drawn by the reference (see the module docstring)
        self.slow = np.flatnonzero(slow)
        fast = ~slow
        steps = int(spread[fast].max()) if fast.any() else 0
        rows = np.broadcast_to(np.arange(n)[:, None], lo.shape)
        self._thresholds = []
        for j in range(steps):
            inside = (hi - lo > j) & fast[:, None]
            at = np.minimum(lo + j, width - 1)
            self._thresholds.append(
                np.ascontiguousarray(np.where(inside, cdf[rows, at], 2.0).ravel())
            )
        self._low = np.ascontiguousarray(lo.ravel())
        self._offsets = np.arange(n, dtype=np.int64) * buckets

    @staticmethod
    def _bounds(cdf: np.ndarray, top: np.ndarray, buckets: int) -> tuple[np.ndarray, np.ndarray]:
        """The reference's type at each bucket's left edge and at its largest uniform."""
        edges = np.arange(buckets, dtype=np.float64) / buckets
        last = np.nextafter(np.arange(1, buckets + 1, dtype=np.float64) / buckets, 0.0)
        n = cdf.shape[0]
        lo = np.empty((n, buckets), dtype=np.int64)
        hi = np.empty((n, buckets), dtype=np.int64)
        for i in range(n):
            lo[i] = np.minimum(np.searchsorted(cdf[i], edges, side="right"), top[i])
            hi[i] = np.minimum(np.searchsorted(cdf[i], last, side="right"), top[i])
        return lo, hi

    def draw(self, u: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The types of a (L, n) block of uniforms in [0, 1), into ``out`` ((L, n) int64)."""
        if out is None:
            out = np.empty(u.shape, dtype=np.int64)
        index = np.multiply(u, self.buckets, out=np.empty(u.shape, np.int64), casting="unsafe")
        index += self._offsets
        np.take(self._low, index, out=out, mode="wrap")
        for threshold in self._thresholds:
            out += u >= np.take(threshold, index, mode="wrap")
        for i in self.slow:
            top = int(self.counts[i]) - 1
            out[:, i] = np.minimum(np.searchsorted(self.cdf[i], u[:, i], side="right"), top)
        return out
