"""benchmarks/fuzz.py: the CLI runs every surface and reports a table."""

from __future__ import annotations

import subprocess
import sys

import pytest

from benchmarks import fuzz


def test_help_runs_as_a_module() -> None:
    result = subprocess.run([sys.executable, "-m", "benchmarks.fuzz", "--help"], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0
    for option in ("--inputs", "--seed", "--surfaces", "--time-budget"):
        assert option in result.stdout


def test_a_short_run_of_every_surface_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert fuzz.main(["--inputs", "15", "--seed", "3", "--no-progress"]) == 0
    table = capsys.readouterr().out
    for surface in fuzz.SURFACES:
        assert surface in table
    assert "first failure" in table


def test_failures_are_counted_and_the_first_is_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(rng, env=None):
        raise AssertionError("planted")

    monkeypatch.setattr(fuzz, "check_parser", broken)
    row = fuzz.run_surface("parser", 5, 0, progress=False)
    assert row["failures"] == 5 and "planted" in row["first_failure"] and row["inputs"] == 5


def test_unknown_surface_is_rejected() -> None:
    with pytest.raises(SystemExit):
        fuzz.main(["--surfaces", "gpu"])
