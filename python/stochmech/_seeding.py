"""One place that turns a user's ``seed`` into numpy's seeding objects (SPEC 7).

Every function of stochmech that takes a ``seed`` accepts

* an ``int`` (>= 0): the same numbers as always (``SeedSequence(seed)``);
* a :class:`numpy.random.SeedSequence`: used as is (it is not spawned from, so passing the
  same object twice gives the same numbers twice);
* a :class:`numpy.random.Generator`: consumed deterministically. Four 64-bit words are drawn
  from it (``rng.integers(2**63, size=4)``) and become the entropy of a fresh
  ``SeedSequence``; the generator moves on, so two calls with the same generator give two
  different, reproducible runs (as ``scipy`` does with a ``Generator`` ``random_state``).

A run records the seed it used in a JSON-ready form (:func:`seed_record`): the int itself, or
``{"entropy": ..., "spawn_key": [...]}`` from which ``SeedSequence(entropy, spawn_key=...)``
rebuilds the same streams.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from stochmech._validate import integer

__all__ = [
    "SeedLike",
    "child_seed",
    "describe_seed",
    "normalize_seed",
    "seed_record",
    "seed_sequence",
    "spawn",
]

#: what a ``seed`` argument accepts
SeedLike = int | np.integer | np.random.SeedSequence | np.random.Generator


def normalize_seed(seed: Any, name: str = "seed") -> int | np.random.SeedSequence:
    """An ``int`` stays an ``int``; a ``SeedSequence`` stays; a ``Generator`` gives a fresh
    ``SeedSequence`` drawn from it; anything else raises ``ValueError`` naming ``name``.

    Examples
    --------
    >>> normalize_seed(7)
    7
    >>> ss = normalize_seed(np.random.default_rng(0))
    >>> ss.entropy == normalize_seed(np.random.default_rng(0)).entropy
    True
    """
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, np.random.Generator):
        words = seed.integers(2**63, size=4, dtype=np.int64)
        return np.random.SeedSequence([int(w) for w in words])
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Real):
        raise ValueError(
            f"{name} must be a non-negative int, a numpy SeedSequence or a numpy Generator, "
            f"got {seed!r}"
        )
    return integer(seed, name, minimum=0)


def seed_sequence(seed: Any, name: str = "seed") -> np.random.SeedSequence:
    """The ``SeedSequence`` of ``seed`` (``SeedSequence(seed)`` for an int, as numpy does)."""
    s = normalize_seed(seed, name)
    return s if isinstance(s, np.random.SeedSequence) else np.random.SeedSequence(s)


def spawn(seed: Any, count: int) -> list[np.random.SeedSequence]:
    """``count`` independent child sequences of ``seed``: ``SeedSequence(seed).spawn(count)``
    for an int, and the same children (spawn keys ``(*spawn_key, k)``) for a
    ``SeedSequence``, without touching its spawn counter (same seed object, same streams).

    Examples
    --------
    >>> a = spawn(4, 2); b = np.random.SeedSequence(4).spawn(2)
    >>> [x.generate_state(1)[0] for x in a] == [x.generate_state(1)[0] for x in b]
    True
    """
    ss = seed_sequence(seed)
    return [
        np.random.SeedSequence(ss.entropy, spawn_key=(*ss.spawn_key, k), pool_size=ss.pool_size)
        for k in range(int(count))
    ]


def child_seed(seed: Any, index: int) -> int:
    """A 63-bit int seed for replication ``index`` of ``seed``, independent of how many
    replications there are.

    An int seed keeps the derivation stochmech always used (``SeedSequence([seed, index])``);
    a ``SeedSequence`` gets the child with ``spawn_key`` extended by ``index`` (what
    ``spawn`` would give, without changing the parent's spawn counter).
    """
    s = normalize_seed(seed)
    if isinstance(s, np.random.SeedSequence):
        child = np.random.SeedSequence(s.entropy, spawn_key=(*s.spawn_key, int(index)))
    else:
        child = np.random.SeedSequence([s, int(index)])
    return int(child.generate_state(1, dtype=np.uint64)[0] >> 1)


def seed_record(seed: Any) -> int | dict[str, Any]:
    """JSON-ready form of a normalized seed: the int, or its entropy and spawn key.

    Examples
    --------
    >>> seed_record(3)
    3
    >>> seed_record(np.random.SeedSequence(5, spawn_key=(1,)))
    {'entropy': 5, 'spawn_key': [1]}
    """
    s = normalize_seed(seed)
    if isinstance(s, np.random.SeedSequence):
        return {"entropy": s.entropy, "spawn_key": [int(k) for k in s.spawn_key]}
    return s


def describe_seed(seed: Any) -> str:
    """Short text of a seed for captions and reprs."""
    rec = seed_record(seed)
    if isinstance(rec, int):
        return str(rec)
    entropy = rec["entropy"]
    text = f"SeedSequence(entropy={entropy}"
    if len(text) > 40:
        text = text[:37] + "..."
    return text + (f", spawn_key={tuple(rec['spawn_key'])})" if rec["spawn_key"] else ")")
