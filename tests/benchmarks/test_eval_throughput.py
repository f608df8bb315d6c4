"""benchmarks/eval_throughput.py: both prefill modes answer the same states with the same answers."""

from __future__ import annotations

import json

import pytest

from benchmarks import eval_throughput

pytest.importorskip("torch")


def test_tiny_run_reports_a_speedup_and_identical_answers(tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert eval_throughput.main(["--config", "tiny-cpu", "--states", "4", "--rounds", "2",
                                 "--set", "data.sessions=synthetic:12?seed=1", "--set", "eval.batch_size=2",
                                 "--out", str(out)]) == 0
    row = json.loads(out.read_text())
    assert row["states"] == 4 and len(row["seconds_whole_prefill"]) == len(row["seconds_shared_prefix"]) == 2
    assert row["answers_differing"] == 0  # greedy answers do not depend on how the prompt was prefilled
    assert 0 < row["shared_prefix_tokens"] < row["mean_prompt_tokens"] and row["speedup"] > 0
    assert "| tiny-cpu | tiny |" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--states", "0"], ["--config", "no-such-preset"], ["--set", "eval.nope=1"]])
def test_bad_arguments_exit_2_with_an_error_line(argv, capsys):
    assert eval_throughput.main(argv) == 2
    assert capsys.readouterr().err.startswith("error: ")
