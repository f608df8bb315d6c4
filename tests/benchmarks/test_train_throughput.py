"""benchmarks/train_throughput.py: both SFT trainers run on the same batches and train the same model."""

from __future__ import annotations

import json

import pytest

from benchmarks import train_throughput


def test_sft_only_run_reports_speedup_and_equal_losses(tmp_path, capsys):
    out = tmp_path / "tput.json"
    assert train_throughput.main(["--models", "tiny", "--sft-steps", "1", "--grpo-steps", "0", "--batch-size", "2",
                                  "--sessions", "synthetic:6?seed=1", "--out", str(out)]) == 0
    row = json.loads(out.read_text())["models"]["tiny"]
    stock, fast = row["sft_fp32_stock"], row["sft_optimized"]
    assert stock["tokens"] == fast["tokens"] > 0 and row["sft_speedup"] > 0
    assert len(stock["losses"]) == len(fast["losses"]) == 2
    assert row["sft_max_loss_gap"] < 0.05  # the optimized path (bf16 autocast) trains what fp32 trains
    assert row["grpo_with_self_certainty"]["seconds_per_step"] is None  # --grpo-steps 0: not measured
    assert "| tiny |" in capsys.readouterr().out


def test_grpo_only_run_times_every_variant(tmp_path, capsys):
    out = tmp_path / "tput.json"
    assert train_throughput.main(["--models", "tiny", "--sft-steps", "0", "--grpo-steps", "1",
                                  "--sessions", "synthetic:6?seed=1", "--out", str(out)]) == 0
    row = json.loads(out.read_text())["models"]["tiny"]
    assert row["sft_speedup"] is None and row["sft_fp32_stock"]["steps"] == 0  # --sft-steps 0: not measured
    for key, *_ in train_throughput.GRPO_VARIANTS:
        assert row[key]["steps"] == 1 and row[key]["seconds_per_step"] > 0, key
    assert row["grpo_shared_prefill_speedup"] > 0 and row["grpo_compact_head_speedup"] > 0
    assert "| tiny |" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--sft-steps", "0", "--grpo-steps", "0"], ["--batch-size", "0"],
                                  ["--grpo-steps", "-1"], ["--grpo-variants", "grpo_nope"]])
def test_bad_arguments_exit_2_with_an_error_line(argv, capsys):
    assert train_throughput.main(["--models", "tiny", *argv]) == 2
    assert capsys.readouterr().err.startswith("error: ")
