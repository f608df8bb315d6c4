"""benchmarks/paper.py: rows are presets applied on the chosen base, stages are shared."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.paper import BASES, ROWS, row_config

REPO = Path(__file__).resolve().parents[1]
QUICK = ["data.sessions=synthetic:16?seed=3", "sft.max_steps=2", "sft.batch_size=2", "grpo.steps=2",
         "grpo.batch_size=2", "grpo.num_generations=2", "grpo.max_completion_tokens=8", "grpo.save_steps=1",
         "eval.max_states=4", "eval.max_new_tokens=8", "eval.batch_size=4", "data.max_prompt_tokens=512"]


def test_every_row_resolves_on_both_bases():
    for base in BASES.values():
        for row in ROWS.values():
            row_config(base, row)


def test_rows_are_the_ablation_switches_on_the_tiny_base():
    tiny = row_config("tiny-cpu", ROWS["shop-r1"])
    assert row_config("tiny-cpu", ROWS["no-dars"]).reward["dars_factor"] == 1
    assert row_config("tiny-cpu", ROWS["no-sft"]).sft.enabled is False
    assert row_config("tiny-cpu", ROWS["binary"]).reward["action_reward"] == "binary"
    assert row_config("tiny-cpu", ROWS["whole-session"]).data.context == "whole-session"
    rl = row_config("tiny-cpu", ROWS["rl-binary"])
    assert rl.sft.enabled is False and rl.reward["action_reward"] == "binary"
    # Only the switch changes: model, steps and data stay the tiny ones.
    no_format = row_config("tiny-cpu", ROWS["no-format"])
    assert (no_format.model, no_format.grpo.steps, no_format.data) == (tiny.model, tiny.grpo.steps, tiny.data)
    assert row_config("paper-qwen2.5-3b", ROWS["no-format"]).grpo.steps == 500


def test_cli_rejects_unknown_rows_and_keys_before_training(tmp_path):
    script = str(REPO / "benchmarks" / "paper.py")
    bad_row = subprocess.run([sys.executable, script, "--rows", "shop-r1,nope", "--out", str(tmp_path)],
                             cwd=REPO, capture_output=True, text=True, timeout=120)
    assert bad_row.returncode == 2 and "nope" in bad_row.stderr
    bad_key = subprocess.run([sys.executable, script, "--set", "grpo.stepz=1", "--out", str(tmp_path)],
                             cwd=REPO, capture_output=True, text=True, timeout=120)
    assert bad_key.returncode == 2 and "'grpo.stepz'" in bad_key.stderr
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_tiny_rows_share_the_sft_checkpoint(tmp_path):
    cmd = [sys.executable, str(REPO / "benchmarks" / "paper.py"), "--preset", "tiny", "--out", str(tmp_path),
           "--rows", "zero-shot,sft,shop-r1,no-dars", "--no-progress"]
    for item in QUICK:
        cmd += ["--set", item]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(list(tmp_path.glob("sft-*"))) == 1 and len(list(tmp_path.glob("grpo-*"))) == 2
    results = json.loads((tmp_path / "results.json").read_text())
    assert all(results["rows"][r]["metrics"]["n"] == 4 for r in ("zero-shot", "sft", "shop-r1", "no-dars"))
    report = (tmp_path / "report.md").read_text()
    assert "Tab. 2" in report and "Tab. 4" in report and "Shop-R1 w/o DARS" in report
