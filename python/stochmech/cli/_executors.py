"""``--workers``, ``--scheduler`` and ``--no-progress``: where the sweeps and audits of the
command line run, and whether they show progress."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from stochmech.markets._sweeps import default_workers

__all__ = ["add_executor_arguments", "executor_from_args", "progress_from_args"]


def add_executor_arguments(p: argparse.ArgumentParser, *, local_default: bool = True) -> None:
    """Adds ``--workers``, ``--scheduler`` and ``--no-progress`` to a subcommand."""
    default = f"default {default_workers()}; 1 runs serially" if local_default else "default 1"
    p.add_argument("--workers", type=int, default=None, help=f"local worker processes ({default})")
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        default=None,
        help="run the tasks on a running Dask scheduler (e.g. tcp://10.0.0.5:8786) instead of "
        "local processes; needs dask.distributed (pip install 'stochmech[dask]')",
    )
    p.add_argument(
        "--no-progress", action="store_true", help="do not show the progress of the tasks"
    )


def progress_from_args(args: argparse.Namespace) -> bool | None:
    """False with ``--no-progress``, True with ``--progress``, else None (on a terminal)."""
    if getattr(args, "no_progress", False):
        return False
    return True if getattr(args, "progress", False) else None


@contextmanager
def executor_from_args(
    args: argparse.Namespace, *, local_default: bool = True
) -> Iterator[tuple[Any, int | None]]:
    """``(executor, workers)`` for :func:`stochmech.markets._sweeps.run_tasks`.

    ``--scheduler ADDRESS`` connects a Dask client (closed on exit); ``--workers 1`` runs
    serially; otherwise a local process pool of ``--workers`` (default: all CPUs up to 4 when
    ``local_default``, else serial).
    """
    workers = getattr(args, "workers", None)
    scheduler = getattr(args, "scheduler", None)
    if workers is not None and workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    if scheduler is not None:
        if workers is not None:
            raise ValueError("give --workers or --scheduler, not both")
        try:
            from distributed import Client
        except ImportError:
            raise SystemExit(
                "error: --scheduler needs dask.distributed: pip install 'stochmech[dask]'"
            ) from None
        try:
            client = Client(scheduler, timeout="20s")
        except OSError as err:
            raise SystemExit(
                f"error: cannot reach the Dask scheduler at {scheduler!r}: {err}"
            ) from None
        try:
            yield client, None
        finally:
            client.close()
        return
    if workers == 1 or (workers is None and not local_default):
        yield "serial", None
    else:
        yield "process", workers
