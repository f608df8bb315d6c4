"""benchmarks/train_throughput.py: both SFT trainers run on the same batches and train the same model."""

from __future__ import annotations

import json

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


def test_bad_arguments_exit_2_with_an_error_line(capsys):
    assert train_throughput.main(["--models", "tiny", "--sft-steps", "0"]) == 2
    assert capsys.readouterr().err.startswith("error: ")
