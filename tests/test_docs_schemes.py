"""The code blocks of docs/schemes.md run (a user-written scheme plugs into the engine)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

DOC = Path(__file__).parent.parent / "docs" / "schemes.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


@pytest.mark.parametrize("index", range(2))
def test_code_blocks_run(index, capsys):
    namespace: dict[str, object] = {"__name__": "docs_schemes"}
    exec(compile(_blocks()[index], f"{DOC}:block{index}", "exec"), namespace)
    assert capsys.readouterr().out


def test_the_user_scheme_saves_and_continues_like_any_other(tmp_path, monkeypatch):
    import sys
    import types

    import stochmech
    from stochmech.games.finite import FiniteGame

    module = types.ModuleType("docs_schemes_user")
    exec(_blocks()[1], module.__dict__)
    monkeypatch.setitem(sys.modules, "docs_schemes_user", module)
    module.Tax.__module__ = module._TaxRun.__module__ = "docs_schemes_user"
    v = np.zeros((2, 2, 2, 2))
    v[:, :, 1, 1] = [[0.0, 2.0], [0.0, 2.0]]
    game = FiniteGame(v, [[0.0, 9.0], [1.0, 1.0]])
    theta = [[0.5, 0.5], [0.5, 0.5]]
    once = stochmech.simulate(game, theta, days=3000, seed=2, mechanism=module.Tax(0.5))
    sim = stochmech.Simulation(game, theta, seed=2, chunk=700, mechanism=module.Tax(0.5))
    sim.run(1000).save(tmp_path / "s.bin")
    # a user-written scheme is code: the file names its class, the caller supplies it again
    with pytest.raises(ValueError, match="pass it again as mechanism="):
        stochmech.Simulation.load(tmp_path / "s.bin")
    again = stochmech.Simulation.load(tmp_path / "s.bin", mechanism=module.Tax(0.5))
    again = again.run(2000).result()
    np.testing.assert_array_equal(again.average_utility, once.average_utility)
    # the tax makes every player pay half its reported valuation, so utility = value / 2
    np.testing.assert_allclose(once.average_utility, 0.5 * once.average_valuation, rtol=1e-12)
