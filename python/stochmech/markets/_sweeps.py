"""Running independent replications of a simulation on any executor, local or on a cluster.

The figures, the incentive comparison of the demand-response market and the audit are sweeps of
independent tasks (one per parameter value and replication). :func:`run_tasks` hands them to

* a local :class:`~concurrent.futures.ProcessPoolExecutor` (``executor="process"``, the default
  of the public sweep functions; workers are spawned, not forked), shut down when the sweep
  ends;
* any :class:`~concurrent.futures.Executor` the caller passes (a thread pool, a cluster's
  executor), which is used as is and left running;
* a Dask ``distributed.Client``, or any object with a ``submit(fn, *args)`` method returning
  futures with ``.result()`` (used as is and left running; see docs/dask.md);
* nobody (``executor=None`` or ``"serial"``): the tasks run one after the other in this process,
  which is what tests and debuggers want.

Results come back in task order whatever the executor, and every task carries its own seed, so
the numbers do not depend on the executor or on the number of workers. A progress bar (tqdm)
counts the tasks as they finish.

Long simulations on workers can checkpoint (:func:`checkpointed_simulation`): the task saves
its :class:`~stochmech.simulation.Simulation` every so many days to its own file, and a task
that finds its file (after a lost worker, or a rerun of an interrupted sweep) resumes from it,
with results bit-identical to an uninterrupted run.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from stochmech._seeding import SeedLike, child_seed, normalize_seed

__all__ = ["ExecutorLike", "checkpointed_simulation", "replication_seeds", "run_tasks"]

T = TypeVar("T")

#: what the ``executor`` argument of a sweep accepts: an Executor, a Dask Client (any object
#: with ``submit``), "process", "serial" or None
ExecutorLike = Executor | Any | str | None


def default_workers() -> int:
    """Worker processes of the default pool: the CPUs this process may use, at most 4."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus))


def replication_seeds(seed: SeedLike, replications: int) -> list[int]:
    """Independent 63-bit seeds for ``replications`` runs, derived from ``seed``.

    Replication r always gets the same seed (whatever the number of replications), so sweeps
    that share ``seed`` use common random numbers across their parameter values. An int seed
    gives ``SeedSequence([seed, r])``'s first word; a ``SeedSequence`` its r-th child; a
    ``Generator`` is consumed once (see ``stochmech._seeding``).

    Examples
    --------
    >>> a = replication_seeds(0, 3)
    >>> a == replication_seeds(0, 5)[:3], len(set(a))
    (True, 3)
    """
    if isinstance(replications, bool) or int(replications) < 1:
        raise ValueError(f"replications must be a positive integer, got {replications!r}")
    seed = normalize_seed(seed)
    return [child_seed(seed, r) for r in range(int(replications))]


def _submits(executor: Any) -> bool:
    """An executor we can hand tasks to: ``submit`` is callable (Executor, Dask Client, ...)."""
    return not isinstance(executor, str) and callable(getattr(executor, "submit", None))


def _is_dask_client(executor: Any) -> bool:
    return type(executor).__module__.split(".")[0] == "distributed" and hasattr(
        executor, "scheduler"
    )


def _progress_bar(progress: bool | None, total: int, desc: str) -> Any:
    if progress is None:
        progress = total > 1 and sys.stderr.isatty()
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="task", desc=desc)


def _gather(futures: list[Any], bar: Any) -> list[Any]:
    """The futures' results in order, ticking ``bar`` as each one finishes."""
    if bar is not None and futures:
        if all(isinstance(f, concurrent.futures.Future) for f in futures):
            for _ in concurrent.futures.as_completed(futures):
                bar.update(1)
        elif type(futures[0]).__module__.split(".")[0] == "distributed":
            from distributed import as_completed

            for _ in as_completed(futures):
                bar.update(1)
        else:  # unknown futures: tick in task order
            out = []
            for f in futures:
                out.append(f.result())
                bar.update(1)
            return out
    return [f.result() for f in futures]


def run_tasks(
    fn: Callable[..., T],
    tasks: Sequence[tuple[Any, ...]],
    executor: ExecutorLike = "process",
    *,
    workers: int | None = None,
    progress: bool | None = False,
    desc: str = "tasks",
) -> list[T]:
    """``[fn(*t) for t in tasks]``, possibly in parallel; results in task order.

    Parameters
    ----------
    fn : callable
        A module-level function (it must pickle to reach a process pool or a cluster).
    tasks : sequence of tuples
        Positional arguments of each call.
    executor : Executor, Dask Client, "process", "serial" or None
        Where the calls run (see the module docstring). A given executor or client (anything
        with a ``submit`` method whose futures have ``.result()``) is not shut down. Dask
        tasks are submitted with ``pure=False``: every task runs, none is deduplicated.
    workers : int, optional
        Size of the local process pool for ``executor="process"`` (default
        :func:`default_workers`). One worker, or a single task, runs serially.
    progress : bool, optional
        A progress bar counting finished tasks on stderr (None: when stderr is a terminal).
    desc : str
        Label of the progress bar.

    Examples
    --------
    >>> run_tasks(pow, [(2, 3), (3, 2)], executor=None)
    [8, 9]
    >>> from concurrent.futures import ThreadPoolExecutor
    >>> with ThreadPoolExecutor(2) as pool:
    ...     run_tasks(pow, [(2, 3), (3, 2)], executor=pool)
    [8, 9]
    """
    tasks = list(tasks)
    bar = None
    try:
        if _submits(executor):
            submitter: Any = executor
            bar = _progress_bar(progress, len(tasks), desc)
            if _is_dask_client(submitter):
                futures = [submitter.submit(fn, *t, pure=False) for t in tasks]
            else:
                futures = [submitter.submit(fn, *t) for t in tasks]
            return _gather(futures, bar)
        if executor is not None and executor not in ("serial", "process"):
            raise ValueError(
                "executor must be a concurrent.futures.Executor, a Dask Client (or any object "
                f"with a submit method), 'process', 'serial' or None, got {executor!r}"
            )
        n = default_workers() if workers is None else int(workers)
        if executor == "process" and n < 1:
            raise ValueError(f"workers must be >= 1, got {workers!r}")
        bar = _progress_bar(progress, len(tasks), desc)
        if executor in (None, "serial") or n == 1 or len(tasks) <= 1:
            out = []
            for t in tasks:
                out.append(fn(*t))
                if bar is not None:
                    bar.update(1)
            return out
        # "spawn": no fork of a process that may run threads (numpy, a caller's thread pool)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(n, len(tasks)), mp_context=context) as pool:
            return _gather([pool.submit(fn, *t) for t in tasks], bar)
    finally:
        if bar is not None:
            bar.close()


def checkpointed_simulation(
    make: Callable[[], Any],
    days: int,
    path: str | os.PathLike[str] | None,
    every: int = 100_000,
) -> Any:
    """Runs a :class:`~stochmech.simulation.Simulation` to ``days`` days, saving it to
    ``path`` about every ``every`` days; returns its result.

    Saves happen at the first chunk boundary after each ``every`` days
    (:meth:`~stochmech.simulation.Simulation.run` with ``checkpoint``): a simulation split at
    its batch boundaries replays exactly the draws of an uninterrupted run.

    If ``path`` exists, the saved simulation is loaded and continued instead of calling
    ``make()`` (a lost worker, or an interrupted sweep run again, loses at most ``every`` days
    of work); the result is bit-identical to an uninterrupted run. The file is left in place
    when the run ends, so a rerun of a finished task just reads it. ``path=None`` runs without
    saving. The saved simulation must be the one ``make()`` would build (the caller names the
    files; :func:`stochmech.markets.demand_response.figures.figure2` and friends put the figure,
    point, replication and seed in the name).
    """
    from stochmech.simulation import Simulation

    days, every = int(days), int(every)
    if every < 1:
        raise ValueError(f"checkpoint every must be >= 1 day, got {every}")
    if path is None:
        return make().run(days, progress=False).result()
    path = Path(path)
    sim = Simulation.load(path) if path.exists() else make()
    if sim.day > days:
        raise ValueError(f"checkpoint {str(path)!r} is at day {sim.day}, beyond the {days} asked")
    if sim.day < days:
        sim.run(days - sim.day, progress=False, checkpoint=path, checkpoint_every=every)
    return sim.result()


def mean_and_se(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over axis 0 and its standard error (sample std with ddof=1 over sqrt(R))."""
    x = np.asarray(samples, dtype=float)
    if x.shape[0] < 2:
        raise ValueError(f"a standard error needs at least 2 replications, got {x.shape[0]}")
    return x.mean(axis=0), x.std(axis=0, ddof=1) / np.sqrt(x.shape[0])
