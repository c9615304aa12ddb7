"""The command line's contract: input errors are one line on stderr with exit status 2, an
audit that finds a profitable deviation exits 1, Ctrl-C exits 130, ``--json`` is strict JSON,
and no traceback reaches the user unless ``--debug`` is given."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from stochmech.cli import main

ROOT = Path(__file__).resolve().parent.parent
FEEDER = str(ROOT / "examples" / "feeder-inflate.toml")


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def assert_input_error(argv: list[str], *words: str) -> str:
    code, _, err = run_cli(argv)
    assert code == 2, (argv, code, err)
    assert err.count("\n") == 1 and err.startswith("stochmech"), err
    assert "Traceback" not in err
    for w in words:
        assert w in err, (w, err)
    return err


def finite_scenario(tmp_path: Path, n: int = 2, k: int = 2, scale: float = 1.0) -> str:
    values = [
        [[[scale * (i + t + b) for b in range(2)] for _ in range(2)] for t in range(k)]
        for i in range(n)
    ]
    players = "".join(
        f'\n[[players]]\nname = "p{i}"\nsupertype = {[1.0 / k] * k}\n' for i in range(n)
    )
    text = (
        'name = "x"\ndays = 100\nseed = 0\n[game]\nkind = "finite"\n'
        f"valuations = {values}\ncost = {[[0.0, scale], [scale, 0.0]]}\n{players}"
    )
    path = tmp_path / "s.toml"
    path.write_text(text)
    return str(path)


def test_negative_seed_and_bad_numbers_are_one_line(tmp_path):
    assert_input_error(["run", "--seed", "-1", "--no-plots", "--days", "10"], "seed")
    assert_input_error(["run", FEEDER, "--seed", "-1", "--no-plots"], "seed")
    assert_input_error(["lqg", "run", "--seed", "-1", "--no-plots"], "seed")
    assert_input_error(["run", FEEDER, "--days", "3.7"], "--days")
    assert_input_error(["audit", FEEDER, "--days", "1", "--no-plots"], "days")
    assert_input_error(["nonsense"], "invalid choice")


def test_out_that_is_a_file_or_under_one(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert_input_error(["run", FEEDER, "--days", "50", "--out", str(afile)], str(afile))
    assert_input_error(["run", FEEDER, "--days", "50", "--out", str(afile / "sub")], "afile")


def test_huge_horizons_are_refused(tmp_path):
    assert_input_error(["run", FEEDER, "--days", str(10**30), "--no-plots"], "days")
    assert_input_error(["lqg", "run", "--horizon", str(10**11), "--no-plots"])


def test_scenarios_that_parse_but_cannot_run(tmp_path):
    nested = tmp_path / "nested.toml"
    nested.write_text("a = " + "[" * 5000 + "]" * 5000)
    assert_input_error(["run", str(nested), "--no-plots"])
    # K^n = 2^40 profiles: the exact expectations refuse, naming the way out
    assert_input_error(["run", finite_scenario(tmp_path, n=40), "--no-plots"], "profiles")
    assert_input_error(["run", finite_scenario(tmp_path, scale=1e307), "--no-plots"], "too large")
    code, out, err = run_cli(
        ["run", finite_scenario(tmp_path, scale=1e-320), "--no-plots", "--json"]
    )
    assert code == 0 and err == ""
    json.loads(out, parse_constant=pytest.fail)
    big = tmp_path / "dr.toml"
    big.write_text(
        'name = "dr"\n[game]\nkind = "demand-response"\nreserve = 1e-320\nshortage = 1e308\n'
        '[[players]]\nname = "a"\nsupertype = 1e308\n'
    )
    code, out, err = run_cli(["run", str(big), "--no-plots", "--days", "20", "--json"])
    assert code in (0, 2) and "Traceback" not in err, err
    if code == 0:
        json.loads(out, parse_constant=pytest.fail)
    else:
        assert err.count("\n") == 1


def test_json_is_strict_and_an_audit_failure_exits_1(tmp_path):
    no_penalty = str(ROOT / "examples" / "feeder-no-penalty.toml")
    code, out, err = run_cli(
        ["audit", no_penalty, "--days", "4000", "--history-days", "500", "--no-plots", "--json"]
    )
    assert code == 1, err
    data = json.loads(out, parse_constant=pytest.fail)
    assert data["passed"] is False


def test_debug_shows_the_traceback():
    with pytest.raises(ValueError, match="seed"):
        main(["run", "--seed", "-1", "--no-plots", "--days", "10", "--debug"])


def test_an_internal_error_is_one_line_with_exit_3(monkeypatch):
    import stochmech.report as report

    def broken(args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(report, "run_command", broken)
    code, _, err = run_cli(["run", FEEDER])
    assert code == 3 and err.count("\n") == 1 and "ZeroDivisionError: a bug" in err


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT semantics differ on Windows")
def test_ctrl_c_exits_130_without_a_traceback(tmp_path):
    log = tmp_path / "stderr.txt"
    argv = ["run", FEEDER, "--days", str(10**9), "--no-plots", "--progress"]
    with log.open("w") as err_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "stochmech", *argv],
            stdout=subprocess.DEVNULL,
            stderr=err_file,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        deadline = time.monotonic() + 120
        while not log.read_text() and time.monotonic() < deadline:  # the progress bar started
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    err = log.read_text()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err, err
