"""Smoke test of an installed stochmech (a built wheel in a clean virtual environment).

Run it with the environment's Python from outside the source tree, so that the installed
package is the one imported::

    python .ci/smoke_test.py

It checks that the package imports from the environment (not from a source checkout), that
the version agrees between the metadata, the module and ``stochmech --version``, that
``python -m stochmech`` works, and that ``stochmech run`` simulates the built-in scenario
and a small scenario file, writing its plots.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from importlib.metadata import version
from pathlib import Path

import numpy as np

import stochmech
import stochmech._core

SCENARIO = """
name = "smoke"
days = 500
seed = 1
[game]
kind = "demand-response"
reserve = 1.0
[[players]]
supertype = { values = [1.0, 2.0], probs = [0.5, 0.5] }
strategy = { kind = "inflate", steps = 1 }
[[players]]
supertype = { values = [1.0, 2.0], probs = [0.3, 0.7] }
"""


def run(*args: str) -> str:
    """Run a command, echo it, fail loudly on a non-zero exit, return its standard output."""
    print("$", " ".join(args), flush=True)
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"failed with status {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def main() -> None:
    core = Path(stochmech._core.__file__).resolve()
    site = Path(sysconfig.get_paths()["platlib"]).resolve()
    assert site in core.parents, f"stochmech._core imported from {core}, not from {site}"
    print("native module:", core.name)

    expected = version("stochmech")
    assert stochmech.__version__ == expected, (stochmech.__version__, expected)
    script = shutil.which("stochmech", path=sysconfig.get_paths()["scripts"])
    assert script, "the stochmech command is not installed"
    assert run(script, "--version").strip() == f"stochmech {expected}"
    assert run(sys.executable, "-m", "stochmech", "--version").strip() == f"stochmech {expected}"

    # the Rust ledger: a player who always bids type 1 is flagged every day
    ledger = stochmech.BidLedger([[0.5, 0.5], [0.2, 0.8]])
    bids = np.column_stack([np.arange(2000) % 2, np.ones(2000, dtype=int)])
    flags = ledger.record(bids).flags.sum(axis=0)
    assert flags[1] > flags[0], flags

    with tempfile.TemporaryDirectory() as tmp:
        report = json.loads(run(script, "run", "--days", "2000", "--no-plots", "--json"))
        assert report, report
        scenario = Path(tmp) / "smoke.toml"
        scenario.write_text(SCENARIO, encoding="utf-8")
        out = Path(tmp) / "plots"
        print(run(script, "run", str(scenario), "--out", str(out)))
        pngs = sorted(p.name for p in out.glob("*.png"))
        assert pngs, f"no plots written to {out}"
        print("plots:", ", ".join(pngs))
    print(f"smoke test passed: stochmech {expected} on Python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
