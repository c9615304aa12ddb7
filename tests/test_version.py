"""The version: one number in Cargo, the installed metadata, the module and the command line."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import stochmech
from stochmech.cli import main

if sys.version_info >= (3, 11):
    import tomllib
else:  # the package depends on tomli below Python 3.11
    import tomli as tomllib

ROOT = Path(__file__).parents[1]


def test_version_is_the_cargo_workspace_version() -> None:
    with open(ROOT / "Cargo.toml", "rb") as f:
        cargo = tomllib.load(f)["workspace"]["package"]["version"]
    assert stochmech.__version__ == cargo == version("stochmech")


def test_version_option_prints_the_version(capsys) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"stochmech {stochmech.__version__}\n"


def test_python_dash_m_runs_the_command_line() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "stochmech", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout == f"stochmech {stochmech.__version__}\n"
