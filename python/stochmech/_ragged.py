"""Per-player type spaces: validation and layout of ragged supertypes and bids.

Player i has its own K_i >= 1 types, indexed 0..K_i-1. Supertype bids are accepted either as
an (n, K) array (every player with K types, or K = max K_i with zeros beyond each K_i) or as a
sequence of n one-dimensional pmfs of lengths K_i. Inside the library they are held as the
padded (n, max K_i) array, whose entries beyond K_i are exactly zero; :func:`ragged_rows` gives
the rows back at their own lengths.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from stochmech._validate import check_row_sums

#: largest padded (n, max K_i) float64 table the library allocates, in bytes
MAX_DENSE_BYTES = 1 << 31


def check_type_counts(counts: Any, n_players: int | None = None) -> np.ndarray:
    """Validates per-player type counts K_i >= 1; returns a read-only int64 array."""
    arr = np.asarray(counts)
    if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"type counts must be a non-empty 1-D integer array, got {counts!r:.80}")
    if n_players is not None and arr.size != n_players:
        raise ValueError(f"need one type count per player ({n_players}), got {arr.size}")
    bad = np.flatnonzero(arr < 1)
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"player {i} has {int(arr[i])} types; every player needs K_i >= 1")
    out = arr.astype(np.int64)
    out.setflags(write=False)
    return out


def check_dense_size(rows: int, width: int, what: str, itemsize: int = 8) -> None:
    """Refuses a dense (rows, width) table above :data:`MAX_DENSE_BYTES` before allocating it."""
    size = int(rows) * int(width) * int(itemsize)
    if size > MAX_DENSE_BYTES:
        raise ValueError(
            f"{what} would need a {rows} x {width} table ({size / 2**30:.1f} GiB), above the "
            f"{MAX_DENSE_BYTES / 2**30:.0f} GiB limit; this market is too big for memory"
        )


def pad_pmfs(supertypes: Any, counts: np.ndarray, what: str = "supertypes") -> np.ndarray:
    """Validates supertypes for players with ``counts`` types; the padded (n, max K_i) array.

    ``supertypes`` is an (n, K) array (K >= max K_i, zero mass beyond each player's K_i) or a
    sequence of n 1-D pmfs of lengths K_i. Each pmf must be finite, non-negative and sum to one
    within :data:`PMF_TOLERANCE`.

    Examples
    --------
    >>> pad_pmfs([[1.0], [0.5, 0.5]], np.array([1, 2])).tolist()
    [[1.0, 0.0], [0.5, 0.5]]
    """
    n = counts.size
    width = int(counts.max())
    ragged = _is_ragged(supertypes)
    if ragged:
        rows = list(supertypes)
        if len(rows) != n:
            raise ValueError(f"{what} must hold one pmf per player ({n}), got {len(rows)}")
        check_dense_size(n, width, what)
        theta = np.zeros((n, width))
        for i, row in enumerate(rows):
            try:
                r = np.asarray(row, dtype=np.float64)
            except (TypeError, ValueError) as err:
                raise ValueError(f"{what}[{i}] is not a numeric pmf: {err}") from None
            if r.ndim != 1 or r.size != counts[i]:
                raise ValueError(
                    f"{what}[{i}] must be a pmf over player {i}'s {int(counts[i])} types, "
                    f"got shape {r.shape}"
                )
            theta[i, : r.size] = r
    else:
        try:
            theta = np.array(supertypes, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{what} must be an (n, K) array of pmfs: {err}") from None
        if theta.ndim != 2 or theta.shape[0] != n or theta.shape[1] < width:
            raise ValueError(
                f"{what} must have shape ({n}, {width}) or be a sequence of per-player pmfs, "
                f"got shape {theta.shape}"
            )
    bad = np.argwhere(~np.isfinite(theta) | (theta < 0))
    if bad.size:
        i, t = (int(x) for x in bad[0])
        raise ValueError(
            f"{what} of player {i}: probability of type {t} is {float(theta[i, t])!r}; "
            "probabilities must be finite and >= 0"
        )
    if not ragged and np.any(counts < theta.shape[1]):
        beyond = np.arange(theta.shape[1])[None, :] >= counts[:, None]
        hit = np.argwhere(beyond & (theta != 0))
        if hit.size:
            i, t = (int(x) for x in hit[0])
            raise ValueError(
                f"{what} of player {i} gives probability {float(theta[i, t])!r} to type {t}, "
                f"outside its {int(counts[i])} types"
            )
    theta = theta[:, :width]
    check_row_sums(theta, what)
    return theta


def _is_ragged(x: Any) -> bool:
    """True for a sequence whose rows are 1-D of different lengths (not a rectangular array)."""
    if isinstance(x, np.ndarray) or not isinstance(x, Sequence) or isinstance(x, (str, bytes)):
        return False
    lengths = set()
    for row in x:
        if isinstance(row, np.ndarray):
            if row.ndim != 1:
                return False
            lengths.add(row.shape[0])
        elif isinstance(row, Sequence) and not isinstance(row, (str, bytes)):
            lengths.add(len(row))
        else:
            return False
    return len(lengths) > 1


def ragged_rows(theta: np.ndarray, counts: np.ndarray) -> list[np.ndarray]:
    """The rows of a padded (n, max K_i) array at their own lengths K_i."""
    return [theta[i, : int(k)] for i, k in enumerate(counts)]


def check_bids_in_range(bids: np.ndarray, counts: np.ndarray, first_day: int = 1) -> None:
    """Raises ``ValueError`` for a bid outside its player's own range 0..K_i-1.

    ``bids`` is an (L, n) integer array; the message names the player, the day and the value.
    """
    if bids.size == 0:
        return
    bad = (bids < 0) | (bids >= counts[None, :])
    if bad.any():
        row, i = (int(x) for x in np.argwhere(bad)[0])
        raise ValueError(
            f"bid {int(bids[row, i])} of player {i} on day {first_day + row} is outside the "
            f"type space 0..{int(counts[i]) - 1} of that player"
        )


def player_contexts(game: Any, theta: np.ndarray) -> list[Any]:
    """Each player's private context: its index, own supertype (K_i,) and own type values."""
    from stochmech.strategies import PlayerContext

    counts = game.type_counts
    return [
        PlayerContext(
            player=i,
            supertype=theta[i, : int(counts[i])].copy(),
            n_types=int(counts[i]),
            type_values=game.values_of(i),
        )
        for i in range(game.n_players)
    ]


def padded_cdf(theta: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Row-wise CDFs of padded pmfs, exactly 1 from each player's last type K_i - 1 on."""
    cdf = np.cumsum(theta, axis=1)
    cdf[np.arange(theta.shape[1])[None, :] >= counts[:, None] - 1] = 1.0
    return cdf
