"""Running independent replications of a simulation on any ``concurrent.futures`` executor.

The figures and the incentive comparison of the demand-response market are sweeps of
independent tasks (one per parameter value and replication). :func:`run_tasks` hands them to

* a local :class:`~concurrent.futures.ProcessPoolExecutor` (``executor="process"``, the default
  of the public functions; workers are spawned, not forked), shut down when the sweep ends;
* any :class:`~concurrent.futures.Executor` the caller passes (a cluster's executor, a thread
  pool), which is used as is and left running;
* nobody (``executor=None`` or ``"serial"``): the tasks run one after the other in this process,
  which is what tests and debuggers want.

Results come back in task order whatever the executor, and every task carries its own seed, so
the numbers do not depend on the executor or on the number of workers.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any, TypeVar

import numpy as np

__all__ = ["ExecutorLike", "replication_seeds", "run_tasks"]

T = TypeVar("T")

#: what the ``executor`` argument of a sweep accepts
ExecutorLike = Executor | str | None


def default_workers() -> int:
    """Worker processes of the default pool: the CPUs this process may use, at most 4."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus))


def replication_seeds(seed: int, replications: int) -> list[int]:
    """Independent 63-bit seeds for ``replications`` runs, derived from ``seed``.

    Replication r always gets the same seed (whatever the number of replications), so sweeps
    that share ``seed`` use common random numbers across their parameter values.

    Examples
    --------
    >>> a = replication_seeds(0, 3)
    >>> a == replication_seeds(0, 5)[:3], len(set(a))
    (True, 3)
    """
    if isinstance(replications, bool) or int(replications) < 1:
        raise ValueError(f"replications must be a positive integer, got {replications!r}")
    return [
        int(np.random.SeedSequence([int(seed), r]).generate_state(1, dtype=np.uint64)[0] >> 1)
        for r in range(int(replications))
    ]


def run_tasks(
    fn: Callable[..., T],
    tasks: Sequence[tuple[Any, ...]],
    executor: ExecutorLike = "process",
    *,
    workers: int | None = None,
) -> list[T]:
    """``[fn(*t) for t in tasks]``, possibly in parallel; results in task order.

    Parameters
    ----------
    fn : callable
        A module-level function (it must pickle to reach a process pool).
    tasks : sequence of tuples
        Positional arguments of each call.
    executor : Executor, "process", "serial" or None
        Where the calls run (see the module docstring). A given executor is not shut down.
    workers : int, optional
        Size of the local process pool for ``executor="process"`` (default
        :func:`default_workers`). One worker, or a single task, runs serially.

    Examples
    --------
    >>> run_tasks(pow, [(2, 3), (3, 2)], executor=None)
    [8, 9]
    """
    tasks = list(tasks)
    if executor is None or executor == "serial":
        return [fn(*t) for t in tasks]
    if isinstance(executor, Executor):
        futures = [executor.submit(fn, *t) for t in tasks]
        return [f.result() for f in futures]
    if executor != "process":
        raise ValueError(
            f"executor must be a concurrent.futures.Executor, 'process', 'serial' or None, "
            f"got {executor!r}"
        )
    n = default_workers() if workers is None else int(workers)
    if n < 1:
        raise ValueError(f"workers must be >= 1, got {workers!r}")
    if n == 1 or len(tasks) <= 1:
        return [fn(*t) for t in tasks]
    # "spawn": no fork of a process that may run threads (numpy, a caller's thread pool)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(n, len(tasks)), mp_context=context) as pool:
        futures = [pool.submit(fn, *t) for t in tasks]
        return [f.result() for f in futures]


def mean_and_se(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over axis 0 and its standard error (sample std with ddof=1 over sqrt(R))."""
    x = np.asarray(samples, dtype=float)
    if x.shape[0] < 2:
        raise ValueError(f"a standard error needs at least 2 replications, got {x.shape[0]}")
    return x.mean(axis=0), x.std(axis=0, ddof=1) / np.sqrt(x.shape[0])
