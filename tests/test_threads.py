"""Markets and simulations used from many threads: calls are serialized, and a call that
raises leaves the object as it was."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from stochmech import DNBEMechanism, FiniteGame, Market, Simulation
from stochmech.strategies import HistoryDependent, Truthful

THREADS = 8


def small_game(seed: int = 0, n: int = 3, k: int = 3):
    rng = np.random.default_rng(seed)
    game = FiniteGame(rng.normal(size=(n, k, 2, 3)), rng.normal(size=(2, 3)))
    return game, rng.dirichlet(np.ones(k), size=n)


def _hammer(work, count=THREADS):
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def target(j):
        try:
            barrier.wait()
            work(j)
        except BaseException as err:  # pragma: no cover - the failure being tested
            errors.append(err)

    threads = [threading.Thread(target=target, args=(j,)) for j in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]


def test_concurrent_clears_and_reads_on_one_market(tmp_path):
    game, theta = small_game(1)
    market = DNBEMechanism(game).open(theta)
    rng = np.random.default_rng(2)
    batches = [rng.integers(0, 3, size=(int(rng.integers(1, 60)), 3)) for _ in range(160)]
    done: list[tuple[int, np.ndarray, object]] = []
    lock = threading.Lock()

    def work(j):
        for b, bids in enumerate(batches[j::THREADS]):
            clearing = market.clear(bids)
            with lock:
                done.append((int(clearing.days[0]), bids, clearing))
            # reads and saves interleaved with the writes of the other threads
            assert market.day >= clearing.days[-1]
            repr(market)
            Market.from_bytes(market.to_bytes())
            if b % 5 == 0:
                market.save(tmp_path / f"m{j}.bin")

    _hammer(work)
    assert market.day == sum(len(b) for b in batches)
    # every clearing describes the days its bids were recorded as: replaying the batches in
    # the recorded order gives the same payments and flags
    done.sort(key=lambda item: item[0])
    replay = DNBEMechanism(game).open(theta)
    expected_day = 1
    for first, bids, clearing in done:
        assert first == expected_day
        again = replay.clear(bids)
        np.testing.assert_array_equal(again.total, clearing.total)
        np.testing.assert_array_equal(again.flags, clearing.flags)
        expected_day += len(bids)
    assert replay.ledger.to_bytes() == market.ledger.to_bytes()
    for j in range(THREADS):
        assert Market.load(tmp_path / f"m{j}.bin").day <= market.day


def test_concurrent_runs_equal_one_run():
    game, theta = small_game(3)
    sim = Simulation(game, theta, seed=5, chunk=300)
    lengths = [int(x) for x in np.random.default_rng(4).integers(1, 400, size=THREADS * 4)]

    def work(j):
        for days in lengths[j::THREADS]:
            sim.run(days)
            sim.result()
            Simulation.from_bytes(sim.to_bytes())

    _hammer(work)
    once = Simulation(game, theta, seed=5, chunk=300).run(sum(lengths)).result()
    got = sim.result()
    np.testing.assert_array_equal(once.average_utility, got.average_utility)
    np.testing.assert_array_equal(once.utility_path, got.utility_path)
    assert once.average_welfare == got.average_welfare


def _fails_on_day_1500(own_type, history, rng):
    if history.day == 1499:
        raise RuntimeError("policy failure on day 1500")
    return own_type


def test_a_chunk_that_raises_records_nothing():
    """Chunks are all or nothing (see the simulation module): the run stops at the last
    completed chunk, exactly as a run that ended there."""
    game, theta = small_game(6)
    strategies = [HistoryDependent(_fails_on_day_1500), Truthful(), Truthful()]
    sim = Simulation(game, theta, strategies, seed=1, chunk=1000)
    sim.run(200)
    with pytest.raises(RuntimeError, match="day 1500"):
        sim.run(2000)  # days 201..1000 complete a chunk; the chunk 1001..2000 fails
    assert sim.day == 1000
    twin = Simulation(game, theta, strategies, seed=1, chunk=1000).run(200).run(800)
    assert sim.to_bytes() == twin.to_bytes()


def test_a_penalty_that_modifies_its_day_array_changes_nothing():
    game, theta = small_game(7)

    def vandal(days):
        out = 2.0 * days.astype(float) ** 1.5
        days[:] = -1  # modifies the array it was given
        return out

    def tidy(days):
        return 2.0 * np.asarray(days, dtype=float) ** 1.5

    bids = np.random.default_rng(0).integers(0, 3, size=(300, 3))
    a = DNBEMechanism(game, penalty=vandal).open(theta).clear(bids)
    b = DNBEMechanism(game, penalty=tidy).open(theta).clear(bids)
    np.testing.assert_array_equal(a.days, np.arange(1, 301))
    np.testing.assert_array_equal(a.total, b.total)
