"""Speed and memory of the bid ledger (run with
``python -m pytest benches/bench_ledger.py --benchmark-only -s``).

These are measurements, not timed assertions. Each configuration records 10^6 days of IID
truthful bids (uniform supertypes, or Dirichlet(1) ones where marked; 2 x 10^4 days at
n = 1,000) in one call on a fresh ledger, several rounds; the bids are generated outside the
timed region. Player-days/s = days/s times n. Printed per configuration: days/s (best and
median round), ns per player-day, the ledger's ``nbytes``, the peak RSS of a fresh
subprocess that records the same batch once (VmHWM; and its growth over the process before
the ledger existed; see ``_child_rss`` for why not ``ru_maxrss``), and the ratio to the
dense reference of ``tests/ledger_reference.py`` where that can run at all (timed on a
few days and extrapolated per day: its cost per day is O(n K^n) and does not depend on the
day). A table of everything is printed at the end; ``STOCHMECH_BENCH_DAYS`` changes 10^6.

The GIL benchmark checks that a batch runs with the GIL released: two threads recording into
two ledgers take about as long as one thread (this machine has 2 cores), and a pure-Python
thread keeps counting while a batch runs.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from stochmech import BidLedger

# the dense reference lives with the tests
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import ledger_reference as ref

DAYS = int(os.environ.get("STOCHMECH_BENCH_DAYS", 1_000_000))
# (n, K, detail, supertypes)
FLAGS_ONLY = [(2, 3), (5, 4), (10, 5), (20, 5), (50, 4), (1000, 16)]
DETAIL = [(2, 3), (5, 4), (10, 5)]
CONFIGS = (
    [(n, k, False, "uniform") for n, k in FLAGS_ONLY]
    + [(10, 5, False, "dirichlet")]
    + [(n, k, True, "uniform") for n, k in DETAIL]
)
# dense reference: days to time (None: K^n cells do not fit in memory)
DENSE_DAYS = {(2, 3): 2000, (5, 4): 200, (10, 5): 2}
# days/s asked for (issue: flags 10 M days/s at n = 10, 3 M at n = 50, 50 M player-days/s
# at n = 1,000, K = 16; detail 1 M days/s at n = 10)
TARGETS = {
    (10, 5, False, "uniform"): 10e6,
    (10, 5, False, "dirichlet"): 10e6,
    (50, 4, False, "uniform"): 3e6,
    (1000, 16, False, "uniform"): 50e6 / 1000,
    (10, 5, True, "uniform"): 1e6,
}

RESULTS: dict[tuple[int, int, bool, str], dict[str, float]] = {}


def days_for(n: int) -> int:
    """Days per call: DAYS, or DAYS / 50 at n >= 1,000 (the same number of player-days / 5)."""
    return DAYS if n < 1000 else max(DAYS // 50, 1000)


def supertypes(n: int, k: int, kind: str) -> np.ndarray:
    """Uniform pmfs, or Dirichlet(1) draws (seeded)."""
    if kind == "uniform":
        return np.full((n, k), 1.0 / k)
    return np.random.default_rng(12345).dirichlet(np.ones(k), size=n)


def iid_bids(n: int, k: int, days: int, seed: int = 0, kind: str = "uniform") -> np.ndarray:
    """IID truthful bids for the supertypes of ``kind``, (days, n) int64."""
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        return rng.integers(0, k, (days, n), dtype=np.int64)
    cdf = np.cumsum(supertypes(n, k, kind), axis=1)
    cdf[:, -1] = np.inf
    u = rng.random((days, n))
    return np.stack([np.searchsorted(cdf[i], u[:, i], side="right") for i in range(n)], axis=1)


def uniform(n: int, k: int) -> np.ndarray:
    return supertypes(n, k, "uniform")


def peak_rss_in_subprocess(n: int, k: int, detail: bool, kind: str) -> dict[str, float]:
    """Peak RSS (bytes) of a fresh interpreter that generates the bids and records them once,
    and its RSS just before the ledger was created."""
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--rss",
            str(n),
            str(k),
            str(int(detail)),
            str(days_for(n)),
            kind,
        ],
        check=True,
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def dense_days_per_second(n: int, k: int) -> float | None:
    days = DENSE_DAYS.get((n, k))
    if days is None:
        return None
    bids = iid_bids(n, k, days, seed=1)
    dense = ref.DenseLedger(uniform(n, k))
    dense.record(bids[:1])  # allocate outside the timing
    start = time.perf_counter()
    dense.record(bids[1:])
    return (days - 1) / (time.perf_counter() - start)


@pytest.mark.parametrize(
    ("n", "k", "detail", "kind"),
    CONFIGS,
    ids=[f"n{n}-K{k}-{'detail' if d else 'flags'}-{kind}" for n, k, d, kind in CONFIGS],
)
def test_record_throughput(benchmark, capsys, n, k, detail, kind):
    days = days_for(n)
    bids = iid_bids(n, k, days, kind=kind)
    theta = supertypes(n, k, kind)
    ledgers: list[BidLedger] = []

    def fresh():
        ledgers[:] = [BidLedger(theta)]  # drop the previous round's ledger first
        return (ledgers[-1], bids, detail), {}

    def record(ledger, bids, detail):
        ledger.record(bids, detail=detail)

    rounds = 3 if detail else 5
    benchmark.pedantic(record, setup=fresh, rounds=rounds, iterations=1)
    best, median = days / benchmark.stats["min"], days / benchmark.stats["median"]
    ledger = ledgers[-1]
    assert ledger.day == days
    nbytes = ledger.nbytes
    ledgers.clear()
    rss = peak_rss_in_subprocess(n, k, detail, kind)
    dense = dense_days_per_second(n, k) if kind == "uniform" else None
    row = {
        "best": best,
        "median": median,
        "ns_per_player_day": 1e9 / (best * n),
        "nbytes": nbytes,
        "peak_rss": rss["peak"],
        "rss_growth": rss["peak"] - rss["before"],
        "maxrss": rss["maxrss"],
        "dense": dense if dense is not None else float("nan"),
    }
    RESULTS[(n, k, detail, kind)] = row
    with capsys.disabled():
        print("\n" + format_row(n, k, detail, kind, row))


def format_row(n: int, k: int, detail: bool, kind: str, row: dict[str, float]) -> str:
    dense = row["dense"]
    ratio = f"{row['best'] / dense:>12,.0f}x" if dense == dense else f"{'n/a':>13}"
    dense_txt = f"{dense:>10,.2f}" if dense == dense else f"{'n/a':>10}"
    target = TARGETS.get((n, k, detail, kind))
    met = "" if target is None else (" (target met)" if row["best"] >= target else " (BELOW)")
    return (
        f"{n:>4} {k:>3} {'detail' if detail else 'flags':>6} {kind[:4]:>4} "
        f"{row['best'] / 1e6:>8.3f} {row['median'] / 1e6:>8.3f} {row['best'] * n / 1e6:>8.1f} "
        f"{row['ns_per_player_day']:>8.1f} "
        f"{row['nbytes'] / 2**20:>9.1f} {row['peak_rss'] / 2**20:>9.0f} "
        f"{row['rss_growth'] / 2**20:>9.0f} {row['maxrss'] / 2**20:>9.0f} {dense_txt} {ratio}{met}"
    )


HEADER = (
    "   n   K   mode  pmf  Mdays/s  Mdays/s M pl-d/s  ns/pl-d    nbytes  peak RSS  RSS grow"
    " ru_maxrss   dense/s    ledger/dense\n"
    "                        best   median   (best)   (best)       MiB   MiB (1)       MiB"
    "   MiB (2)  (extrap.)"
)


@pytest.fixture(scope="module", autouse=True)
def summary_table():
    yield
    if RESULTS:
        lines = [format_row(*c, RESULTS[c]) for c in CONFIGS if c in RESULTS]
        print(f"\n\nBidLedger.record, {DAYS:,} IID days per call, {os.cpu_count()} CPUs\n{HEADER}")
        print("\n".join(lines))
        print(
            "dense/s: the dense reference's days per second, timed on "
            + ", ".join(f"{d} days at (n, K) = {nk}" for nk, d in DENSE_DAYS.items())
            + " and extrapolated (its cost per day does not depend on the day); n/a: K^n "
            "cells do not fit in memory. (1) VmHWM of a fresh process that records the batch "
            "once; RSS grow: that minus its RSS before the ledger existed (the bids were already "
            "there; the growth includes the result's (L, n) flag and penalty arrays, 9 n bytes "
            "a day). (2) getrusage(RUSAGE_SELF).ru_maxrss of the same process: Linux carries it "
            "over execve, so it is at least the pytest parent's RSS at fork time."
        )


def test_gil_is_released(benchmark, capsys):
    """Two ledgers recording in two threads vs one after the other; and a Python thread
    counting while a batch runs vs while the main thread sleeps as long."""
    n, k = 10, 5
    bids = [iid_bids(n, k, DAYS, seed=s) for s in (2, 3)]
    theta = uniform(n, k)

    def one(i: int) -> None:
        BidLedger(theta).record(bids[i])

    def sequential() -> float:
        start = time.perf_counter()
        one(0)
        one(1)
        return time.perf_counter() - start

    def parallel() -> float:
        threads = [threading.Thread(target=one, args=(i,)) for i in (0, 1)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.perf_counter() - start

    seq = [sequential() for _ in range(3)]
    par = [parallel() for _ in range(3)]
    benchmark.pedantic(parallel, rounds=1, iterations=1)

    def counted(work) -> tuple[int, float]:
        stop = threading.Event()
        count = [0]

        def counter():
            while not stop.is_set():
                count[0] += 1

        thread = threading.Thread(target=counter)
        thread.start()
        start = time.perf_counter()
        work()
        elapsed = time.perf_counter() - start
        stop.set()
        thread.join()
        return count[0], elapsed

    long_bids = np.concatenate(bids)
    busy, busy_time = counted(lambda: BidLedger(theta).record(long_bids))
    idle, idle_time = counted(lambda: time.sleep(busy_time))
    with capsys.disabled():
        print(
            f"\n[GIL, n={n}, K={k}, {DAYS:,} days per ledger] two ledgers one after the other: "
            f"best {min(seq):.3f} s, median {statistics.median(seq):.3f} s; in two threads: "
            f"best {min(par):.3f} s, median {statistics.median(par):.3f} s "
            f"(parallel/sequential {min(par) / min(seq):.2f}; 0.5 = perfect overlap, 1.0 = "
            f"serialized)\n"
            f"  a Python thread counted {busy / busy_time / 1e6:.2f} M increments/s during a "
            f"{busy_time:.3f} s batch, {idle / idle_time / 1e6:.2f} M/s while the main thread "
            f"slept ({busy / busy_time / (idle / idle_time):.0%} of idle speed)"
        )


@pytest.mark.parametrize(("n", "k"), [(10, 5), (50, 4)], ids=["n10-K5", "n50-K4"])
def test_wrapper_overhead(benchmark, capsys, n, k):
    """Where the time of a flags-only ``BidLedger.record`` goes: the core's batch alone
    (``_core.Ledger.record``), and the Python wrapper's parts (validation, J_p(l), r(l), the
    (L, n) penalty array), each timed on its own, best of several rounds."""
    bids = iid_bids(n, k, DAYS)
    theta = uniform(n, k)
    days = np.arange(1, DAYS + 1, dtype=np.int64)
    flags = np.zeros((DAYS, n), dtype=bool)
    schedule = np.ones(DAYS)

    def best(fn, setup=lambda: None, rounds: int = 5) -> float:
        times = []
        for _ in range(rounds):
            arg = setup()
            start = time.perf_counter()
            fn(arg)
            times.append(time.perf_counter() - start)
        return min(times)

    from stochmech import _core
    from stochmech._window import window
    from stochmech.ledger import PowerPenalty

    parts = {
        "BidLedger.record": best(lambda led: led.record(bids), lambda: BidLedger(theta)),
        "_core.Ledger.record": best(
            lambda core: core.record(bids, False),
            lambda: _core.Ledger(theta.ravel(), [k] * n, 0.5),
        ),
        "check_bids": best(lambda _: BidLedger(theta).check(bids)),
        "J_p(l) = l**1.5": best(lambda _: PowerPenalty()(days)),
        "r(l) (window)": best(lambda _: window(days, 0.5)),
        "penalty array (np.where)": best(lambda _: np.where(flags, schedule[:, None], 0.0)),
    }
    benchmark.pedantic(lambda: BidLedger(theta).record(bids), rounds=1, iterations=1)
    total = parts["BidLedger.record"]
    with capsys.disabled():
        print(f"\n[wrapper overhead, n={n}, K={k}, {DAYS:,} days, flags only, best of 5]")
        for name, t in parts.items():
            print(
                f"  {name:<26} {t * 1e3:8.1f} ms  {t / total:6.1%}  "
                f"({DAYS / t / 1e6:6.2f} M days/s)"
            )


def _status_bytes(field: str) -> int:
    """A ``VmRSS``/``VmHWM`` line of /proc/self/status, in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _child_rss(n: int, k: int, detail: bool, days: int, kind: str) -> None:
    """Child process: generate the bids, note the RSS, record once, print the peak RSS.

    The peak is VmHWM, the high-water mark of this process's own memory map. On Linux,
    ``getrusage(RUSAGE_SELF).ru_maxrss`` survives execve: a child forked from a large pytest
    process reports at least the parent's RSS at fork time, so it is printed for comparison
    only (``maxrss``)."""
    bids = iid_bids(n, k, days, kind=kind)
    before = _status_bytes("VmRSS")
    ledger = BidLedger(supertypes(n, k, kind))
    ledger.record(bids, detail=detail)
    peak = _status_bytes("VmHWM")
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    print(json.dumps({"before": before, "peak": peak, "maxrss": maxrss, "nbytes": ledger.nbytes}))


if __name__ == "__main__" and len(sys.argv) == 7 and sys.argv[1] == "--rss":
    _child_rss(
        int(sys.argv[2]), int(sys.argv[3]), bool(int(sys.argv[4])), int(sys.argv[5]), sys.argv[6]
    )
