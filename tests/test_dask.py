"""Sweeps and audits on a Dask cluster (a small in-process LocalCluster): identical to serial."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from tests.test_audit import project_game  # noqa: E402

from stochmech.audit import audit  # noqa: E402
from stochmech.cli import main  # noqa: E402
from stochmech.markets._sweeps import run_tasks  # noqa: E402
from stochmech.markets.demand_response.figures import FigureSetup, figure2  # noqa: E402
from stochmech.scenario import load_scenario  # noqa: E402

EXAMPLES = Path(__file__).parents[1] / "examples"
SETUP = FigureSetup(levels=4, n_providers=5, days=3000, replications=3, seed=7)

pytestmark = [
    # distributed's own shutdown chatter and its deprecations are not ours to fix
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
    )
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def test_run_tasks_on_a_client_keeps_task_order(client) -> None:
    assert run_tasks(pow, [(2, k) for k in range(6)], client) == [2**k for k in range(6)]


def test_figure2_on_a_client_equals_serial(client) -> None:
    serial = figure2(SETUP, ns=[2, 5], executor=None)
    dask = figure2(SETUP, ns=[2, 5], executor=client, progress=False)
    assert serial.to_dict() == dask.to_dict()
    assert np.all(dask.columns["simulated_se"] > 0)


def test_audit_on_a_client_equals_serial(client) -> None:
    game, theta = project_game()
    kwargs = {"days": 3000, "history_days": 800, "seed": 2, "resolution": 4}
    serial = audit(game, theta, 0, **kwargs)
    dask = audit(game, theta, 0, executor=client, progress=False, **kwargs)
    assert serial.to_dict() == dask.to_dict()
    assert str(serial) == str(dask)


def test_scenario_audit_on_a_client_equals_serial(client) -> None:
    scenario = load_scenario(EXAMPLES / "feeder-inflate.toml")
    serial = scenario.audit(1, days=1500, history_days=300)
    dask = scenario.audit(1, days=1500, history_days=300, executor=client)
    assert serial.to_dict() == dask.to_dict()


def test_cli_scheduler_option_runs_figures_and_audit(client, tmp_path, capsys) -> None:
    address = client.scheduler.address
    common = ["figures", "--only", "4", "--days", "300", "--replications", "2", "--levels", "2"]
    common += ["--json", "--no-progress"]
    assert main([*common, "--out", str(tmp_path / "a"), "--workers", "1"]) == 0
    serial = json.loads(capsys.readouterr().out)
    assert main([*common, "--out", str(tmp_path / "b"), "--scheduler", address]) == 0
    dask = json.loads(capsys.readouterr().out)
    assert serial["figures"][0]["max_abs_z"] == dask["figures"][0]["max_abs_z"]
    a = (tmp_path / "a" / "fig4_posted_price.csv").read_text()
    b = (tmp_path / "b" / "fig4_posted_price.csv").read_text()
    assert a == b

    scenario = str(EXAMPLES / "feeder-inflate.toml")
    args = ["audit", scenario, "--days", "1500", "--history-days", "300", "--json", "--no-plots"]
    assert main(args) == 0
    serial = json.loads(capsys.readouterr().out)
    assert main([*args, "--scheduler", address, "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out) == serial


def test_cli_refuses_workers_with_scheduler(capsys) -> None:
    assert main(["figures", "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"]) == 2
    assert "not both" in capsys.readouterr().err
