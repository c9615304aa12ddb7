"""``stochmech run`` and ``stochmech audit`` through :func:`stochmech.cli.main`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from stochmech.cli import main
from stochmech.scenario import load_scenario

EXAMPLES = Path(__file__).parents[1] / "examples"


def _png(path: Path) -> None:
    data = Path(path).read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 5000


def test_run_prints_a_report_and_writes_plots(tmp_path, capsys) -> None:
    out = tmp_path / "plots"
    scenario = str(EXAMPLES / "feeder-inflate.toml")
    assert main(["run", scenario, "--days", "3000", "--seed", "4", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Scenario 'feeder-inflate'" in text and "household 0" in text
    assert "inflate by 1 type, declares the induced law" in text and "planner's budget" in text
    _png(out / "utility_convergence.png")
    _png(out / "penalty_days.png")


def test_run_json_matches_the_library(tmp_path, capsys) -> None:
    scenario = str(EXAMPLES / "demand-response-inflate.toml")
    args = ["run", scenario, "--days", "2000", "--seed", "3", "--json", "--out", str(tmp_path)]
    assert main(args) == 0
    data = json.loads(capsys.readouterr().out)
    res = load_scenario(scenario).simulate(2000, 3)
    got = [p["average_utility"] for p in data["players"]]
    np.testing.assert_allclose(got, res.average_utility, rtol=1e-12)
    assert data["days"] == 2000 and data["seed"] == 3 and len(data["plots"]) == 2
    assert data["planner_budget_per_day"] == pytest.approx(res.budget)
    # truthful providers earn their truthful long-run utility up to early penalties
    for p in data["players"][1:]:
        assert p["average_utility"] + p["average_penalty"] == pytest.approx(p["truthful_utility"])


def test_default_output_folder_is_named_after_the_scenario(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(EXAMPLES / "collusion.toml"), "--days", "500"]) == 0
    _png(tmp_path / "stochmech-out" / "collusion" / "penalty_days.png")


def test_audit_passes_on_the_sound_mechanism(tmp_path, capsys) -> None:
    scenario = str(EXAMPLES / "feeder-inflate.toml")
    args = ["audit", scenario, "--days", "4000", "--history-days", "1000", "--out", str(tmp_path)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "Verdict: PASS" in text and "Overall: PASS" in text
    assert "scenario: inflate by 1 type" in text
    _png(tmp_path / "player0_audit_gain.png")
    _png(tmp_path / "player0_audit_penalty_days.png")


def test_audit_fails_without_penalties_and_says_so(tmp_path, capsys) -> None:
    scenario = str(EXAMPLES / "feeder-no-penalty.toml")
    args = ["audit", scenario, "--days", "4000", "--history-days", "1000", "--json", "--no-plots"]
    assert main(args) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["passed"] is False and data["plots"] == []
    (report,) = data["audits"]
    assert report["mechanism"]["penalize"] is False and not report["long_run_ok"]
    assert any("always bids type 0" in f for f in report["failures"])
    own = report["deviations"][0]
    assert own["gains"] and own["simulated_gain"] > 0.4 and own["exact_gain"] > 0.4


PROJECTS = """
# Two projects (first stage) and an optional extra shift (second stage, cost 0.7).
# Player 0 values project 0 at 1 + t and the shift at 0.5 t; player 1 values project 1 at 1.5.
name = "projects"
days = 3000
[game]
kind = "finite"
valuations = [
  [[[1.0, 1.0], [0.0, 0.0]], [[2.0, 2.5], [0.0, 0.5]]],
  [[[0.0, 0.5], [1.5, 2.0]], [[0.0, 0.5], [1.5, 2.0]]],
]
cost = [[0.0, 0.7], [0.0, 0.7]]
[[players]]
supertype = [0.7, 0.3]
[[players]]
supertype = [0.5, 0.5]
"""


def test_audit_switches_from_the_command_line(tmp_path, capsys) -> None:
    scenario = tmp_path / "projects.toml"
    scenario.write_text(PROJECTS)
    args = ["audit", str(scenario), "--history-days", "600", "--no-plots"]
    assert main(args) == 0
    assert "Overall: PASS" in capsys.readouterr().out
    # without the first-stage payment player 0 exaggerates its value to win project 0
    assert main([*args, "--no-first-stage-payment", "--player", "0"]) == 1
    text = capsys.readouterr().out
    assert "Incentive audit of player 0" in text and "first-stage payment OFF" in text
    assert "Verdict: FAIL" in text and "a stationary lie gains" in text
    assert main([*args, "--no-penalty", "--player", "0"]) == 1
    assert "penalties OFF" in capsys.readouterr().out


def test_run_without_a_scenario_runs_the_built_in_scenario_file(tmp_path, capsys) -> None:
    from importlib.resources import files

    shipped = files("stochmech").joinpath("scenarios/demand_response.toml")
    copy = tmp_path / "demand-response.toml"
    copy.write_text(shipped.read_text("utf-8"))
    assert main(["run", "--days", "300", "--json", "--no-plots"]) == 0
    built_in = json.loads(capsys.readouterr().out)
    assert main(["run", str(copy), "--days", "300", "--json", "--no-plots"]) == 0
    from_file = json.loads(capsys.readouterr().out)
    built_in.pop("source"), from_file.pop("source")
    assert built_in == from_file  # one code path, one report


def refused(argv: list[str], capsys, match: str = "") -> None:
    """An input error: exit status 2 and one line on stderr matching ``match``."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.search(match, err), err


def test_bad_arguments(tmp_path, capsys) -> None:
    scenario = str(EXAMPLES / "feeder-inflate.toml")
    refused(["run", scenario, "--days", "0"], capsys, "--days must be >= 1, got 0")
    refused(["audit", scenario, "--player", "7"], capsys, r"--player must be in 0\.\.1, got 7")
    refused(["run", str(tmp_path / "missing.toml")], capsys, "cannot read scenario file")
    bad = tmp_path / "bad.toml"
    bad.write_text("[game]\nkind = 'finite'\n")
    refused(["audit", str(bad)], capsys, "missing key 'players'")
    refused(["audit"], capsys)  # the scenario is required


@pytest.mark.parametrize("name", ["stochmech.plots", "stochmech.report"])
def test_docstring_examples(name: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("name", ["feeder-inflate", "collusion"])
def test_checkpoint_every_and_resume_give_the_uninterrupted_run(name, tmp_path, capsys) -> None:
    # collusion's strategies hold code (a public signal): the scenario gives them again
    scenario = str(EXAMPLES / f"{name}.toml")
    ck = tmp_path / "ck.bin"
    base = ["run", scenario, "--json", "--no-plots", "--out", str(tmp_path)]
    assert (
        main([*base, "--days", "3000", "--checkpoint", str(ck), "--checkpoint-every", "500"]) == 0
    )
    first = json.loads(capsys.readouterr().out)
    assert main([*base, "--days", "7000", "--resume", str(ck)]) == 0
    resumed = json.loads(capsys.readouterr().out)
    assert main([*base, "--days", "7000"]) == 0
    assert resumed == json.loads(capsys.readouterr().out)
    assert first["days"] == 3000
    refused([*base, "--days", "100", "--resume", str(ck)], capsys, "past --days")
    other = "feeder-inflate" if name == "collusion" else "collusion"
    refused(
        ["run", str(EXAMPLES / f"{other}.toml"), "--resume", str(ck), "--no-plots"],
        capsys,
        "different scenario|cannot resume",  # (when the scenario's strategies are refused)
    )
    refused([*base, "--resume", str(tmp_path / "nothing.bin")], capsys, "cannot resume")


def test_ctrl_c_saves_a_checkpoint_and_prints_the_resume_command(tmp_path, capsys) -> None:
    import os
    import shlex
    import signal
    import subprocess
    import sys
    import time

    scenario = str(EXAMPLES / "feeder-inflate.toml")
    ck = tmp_path / "ck.bin"
    cmd = [sys.executable, "-m", "stochmech", "run", scenario, "--days", "1000000000",
           "--checkpoint", str(ck), "--checkpoint-every", "65536", "--no-plots", "--json",
           "--out", str(tmp_path)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not ck.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert ck.exists(), proc.stderr.read() if proc.poll() is not None else "no checkpoint"
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "interrupted at day" in err and "resume with:" in err
    day = int(err.split("interrupted at day ")[1].split(" ")[0].replace(",", ""))
    assert day > 0 and day % 65536 == 0
    from stochmech.simulation import Simulation

    assert Simulation.load(ck).day == day
    resume = shlex.split(err.strip().splitlines()[-1])
    assert resume[:3] == ["stochmech", "run", scenario]
    assert resume[resume.index("--resume") + 1] == str(ck)
    assert resume[resume.index("--days") + 1] == "1000000000"
    # continue a little further than the interruption, in-process, and compare
    resume[resume.index("--days") + 1] = str(day + 5000)
    capsys.readouterr()
    assert main(resume[1:]) == 0
    resumed = json.loads(capsys.readouterr().out)
    assert main(["run", scenario, "--days", str(day + 5000), "--json", "--no-plots",
                 "--out", str(tmp_path)]) == 0  # fmt: skip
    assert resumed == json.loads(capsys.readouterr().out)
