"""Seeds: an int, a SeedSequence or a Generator everywhere; ints give the numbers they always
gave; checkpointed sweep runs resume bit-identically; any object with ``submit`` is an executor."""

from __future__ import annotations

from concurrent.futures import Future

import numpy as np
import pytest

from stochmech import FiniteGame, simulate
from stochmech._seeding import child_seed, normalize_seed, spawn
from stochmech.markets._sweeps import checkpointed_simulation, replication_seeds, run_tasks
from stochmech.markets.demand_response.figures import (
    Checkpoints,
    FigureSetup,
    _mechanism_task,
    figure2,
)
from stochmech.simulation import Simulation

V = np.zeros((2, 2, 2, 2))
V[:, :, 1, 1] = [[0.0, 2.0], [0.0, 2.0]]
GAME = FiniteGame(V, [[0.0, 9.0], [1.0, 1.0]])
THETA = [[0.3, 0.7], [0.6, 0.4]]


def _same(a, b) -> bool:
    return bool(
        np.array_equal(a.average_utility, b.average_utility)
        and np.array_equal(a.utility_path, b.utility_path)
        and a.average_welfare == b.average_welfare
    )


def _old_streams(seed: int, count: int) -> list[int]:
    """What the simulation drew from before seeds could be anything but ints."""
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(count)]


def test_int_seeds_keep_their_streams() -> None:
    for seed in (0, 1, 12345, 2**40):
        got = [int(s.generate_state(1)[0]) for s in spawn(seed, 4)]
        assert got == _old_streams(seed, 4)
        old = [
            int(np.random.SeedSequence([seed, r]).generate_state(1, dtype=np.uint64)[0] >> 1)
            for r in range(5)
        ]
        assert replication_seeds(seed, 5) == old


def test_int_seed_equals_its_seed_sequence_and_numpy_integers() -> None:
    a = simulate(GAME, THETA, days=3000, seed=9)
    b = simulate(GAME, THETA, days=3000, seed=np.random.SeedSequence(9))
    c = simulate(GAME, THETA, days=3000, seed=np.int64(9))
    assert _same(a, b) and _same(a, c)
    assert a.summary()["seed"] == 9 and b.summary()["seed"] == {"entropy": 9, "spawn_key": []}


def test_seed_sequence_is_not_consumed() -> None:
    ss = np.random.SeedSequence(4)
    assert _same(
        simulate(GAME, THETA, days=2000, seed=ss), simulate(GAME, THETA, days=2000, seed=ss)
    )
    assert ss.n_children_spawned == 0


def test_generator_is_consumed_deterministically() -> None:
    a = simulate(GAME, THETA, days=2000, seed=np.random.default_rng(3))
    b = simulate(GAME, THETA, days=2000, seed=np.random.default_rng(3))
    assert _same(a, b)
    rng = np.random.default_rng(3)
    first = simulate(GAME, THETA, days=2000, seed=rng)
    second = simulate(GAME, THETA, days=2000, seed=rng)
    assert _same(first, a) and not _same(first, second)
    # documented: four words drawn from the generator seed the run
    words = np.random.default_rng(3).integers(2**63, size=4, dtype=np.int64)
    manual = simulate(GAME, THETA, days=2000, seed=np.random.SeedSequence([int(w) for w in words]))
    assert _same(a, manual)
    rec = a.summary()["seed"]
    rebuilt = np.random.SeedSequence(rec["entropy"], spawn_key=rec["spawn_key"])
    assert _same(a, simulate(GAME, THETA, days=2000, seed=rebuilt))


def test_child_seeds_of_a_seed_sequence_are_its_spawned_children() -> None:
    ss = np.random.SeedSequence(77, spawn_key=(2,))
    kids = np.random.SeedSequence(77, spawn_key=(2,)).spawn(3)
    assert [child_seed(ss, r) for r in range(3)] == [
        int(k.generate_state(1, dtype=np.uint64)[0] >> 1) for k in kids
    ]
    assert replication_seeds(ss, 3) == replication_seeds(ss, 5)[:3]


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3", None, [1, 2]])
def test_bad_seeds_are_refused_with_the_argument_named(bad) -> None:
    with pytest.raises(ValueError, match="seed"):
        normalize_seed(bad)
    with pytest.raises(ValueError, match="seed"):
        Simulation(GAME, THETA, seed=bad)


def test_figure_setup_and_baselines_take_any_seed() -> None:
    setup = FigureSetup(levels=3, days=500, replications=2, seed=np.random.default_rng(1))
    assert isinstance(setup.seed, np.random.SeedSequence)
    assert "SeedSequence" in setup.caption() and isinstance(setup.choices()["seed"], dict)
    again = FigureSetup(levels=3, days=500, replications=2, seed=np.random.default_rng(1))
    assert (
        figure2(setup, [2], executor=None).to_dict() == figure2(again, [2], executor=None).to_dict()
    )
    market = setup.market(2)
    a = market.monte_carlo(300, seed=np.random.SeedSequence(5))
    b = market.monte_carlo(300, seed=5)
    assert a.social_cost == b.social_cost and np.array_equal(a.curtailment, b.curtailment)


# ----- checkpoints -------------------------------------------------------------------------------
def test_checkpointed_simulation_resumes_bit_identically(tmp_path) -> None:
    market = FigureSetup(levels=4).market(3)

    def make() -> Simulation:
        return Simulation(market, market.supertype_bids(), seed=21, chunk=500)

    plain = make().run(5200).result()
    path = tmp_path / "run.sim"
    # a worker dies after 2,000 days: its last checkpoint is on disk
    make().run(2000).save(path)
    resumed = checkpointed_simulation(make, 5200, path, every=700)  # saves on 500-day chunks
    assert _same(plain, resumed) and plain.average_welfare == resumed.average_welfare
    assert Simulation.load(path).day == 5200
    assert _same(checkpointed_simulation(make, 5200, path, every=700), plain)  # finished file
    with pytest.raises(ValueError, match="beyond"):
        checkpointed_simulation(make, 4000, path, every=700)
    with pytest.raises(ValueError, match="every"):
        checkpointed_simulation(make, 10, None, 0)


def test_checkpointed_task_equals_the_plain_task(tmp_path) -> None:
    market = FigureSetup(levels=4).market(3)
    plain = _mechanism_task(market, 3000, 21)
    path = tmp_path / "task.sim"
    assert np.array_equal(_mechanism_task(market, 3000, 21, path, 700), plain)
    assert np.array_equal(_mechanism_task(market, 3000, 21, path, 700), plain)  # read back


def test_figure_with_checkpoints_equals_without(tmp_path) -> None:
    setup = FigureSetup(levels=3, days=1500, replications=2, seed=4)
    plain = figure2(setup, [1, 3], executor=None)
    cp = Checkpoints(tmp_path / "cp", every=400)
    first = figure2(setup, [1, 3], executor=None, checkpoints=cp)
    assert len(list((tmp_path / "cp").glob("fig2_*.sim"))) == 4
    again = figure2(setup, [1, 3], executor=None, checkpoints=str(tmp_path / "cp"))
    assert plain.to_dict() == first.to_dict() == again.to_dict()


# ----- executors ---------------------------------------------------------------------------------
class _Submitter:
    """Not a concurrent.futures.Executor: just ``submit`` returning things with ``result``."""

    def __init__(self) -> None:
        self.calls = 0

    def submit(self, fn, *args):
        self.calls += 1
        f: Future = Future()
        f.set_result(fn(*args))
        return f


class _Lazy:
    def __init__(self, value) -> None:
        self.value = value

    def result(self):
        return self.value


class _LazySubmitter:
    def submit(self, fn, *args):
        return _Lazy(fn(*args))


def test_any_object_with_submit_is_an_executor(capsys) -> None:
    ex = _Submitter()
    assert run_tasks(pow, [(2, 3), (3, 2)], ex, progress=True) == [8, 9] and ex.calls == 2
    assert "2/2" in capsys.readouterr().err
    assert run_tasks(pow, [(2, 3), (3, 2)], _LazySubmitter(), progress=True) == [8, 9]
    assert run_tasks(pow, [(2, 3), (3, 2)], None, progress=True) == [8, 9]
    assert "2/2" in capsys.readouterr().err
    with pytest.raises(ValueError, match="executor must be"):
        run_tasks(pow, [(2, 3)], "cluster")


def test_simulation_with_a_seed_sequence_saves_and_resumes(tmp_path) -> None:
    seed = np.random.default_rng(8)  # consumed into a SeedSequence with a 4-word entropy
    sim = Simulation(GAME, THETA, seed=seed).run(1500)
    assert isinstance(sim.seed, np.random.SeedSequence)
    sim.save(tmp_path / "s.sim")
    back = Simulation.load(tmp_path / "s.sim")
    assert back.seed.entropy == sim.seed.entropy and back.seed.spawn_key == sim.seed.spawn_key
    once = simulate(GAME, THETA, days=3000, seed=np.random.default_rng(8))
    assert _same(back.run(1500).result(), once)
    game = FiniteGame(V, [[0.0, 9.0], [1.0, 1.0]], seed=np.random.SeedSequence(3, spawn_key=(1,)))
    game_sim = Simulation(game, THETA, seed=2).run(10)
    game_sim.save(tmp_path / "g.sim")
    assert Simulation.load(tmp_path / "g.sim").game.seed.spawn_key == (1,)
