"""The training pipeline: metrics log handling, the report and plots, and (slow) a whole
tiny run of ``python training/grpo.py`` that resumes without redoing finished stages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rewards.metrics import compute_metrics
from shop_env.actions import Action
from training.checkpoints import read_metrics, truncate_metrics
from training.config import load_config
from training.report import plot_rollout_types, plot_training, rollout_type_shares, write_report

REPO = Path(__file__).resolve().parents[2]


def test_metrics_log_survives_a_torn_line_and_truncates_to_a_checkpoint(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"step": s, "loss": 0.1 * s}) + "\n" for s in (1, 2, 3)) + '{"step": 4, "lo')
    assert [r["step"] for r in read_metrics(path)] == [1, 2, 3]
    assert truncate_metrics(path, 2) == 2
    assert [r["step"] for r in read_metrics(path)] == [1, 2]
    assert read_metrics(tmp_path / "absent.jsonl") == []


def _rows():
    golds = [Action("click", "a"), Action("terminate"), Action("type_and_submit", "q", "tent")]
    good = compute_metrics(golds, golds)
    poor = compute_metrics([None, Action("terminate"), Action("click", "a")], golds)
    return {"Zero-shot": poor, "Shop-R1": good}


def test_report_has_table_timings_plots_and_config(tmp_path):
    run = tmp_path / "run"
    (run / "grpo").mkdir(parents=True)
    records = [{"step": s, "reward/total": 1.0 + s, "reward/format": 1.0, "reward/type": 0.1 * s,
                "exact_match/click": 0.5, "exact_match/terminate": 1.0, "kl": 0.01 * s, "loss": 0.0,
                "predicted/click": 1.0 - 0.2 * s, "predicted/terminate": 0.2 * s}
               for s in (1, 2, 3)]
    (run / "grpo" / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    rollouts = [{"step": s, "gold": json.dumps({"type": "terminate"}), "predicted": "terminate", "page_type": "search"}
                for s in (1, 2, 3)]
    (run / "grpo" / "rollouts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rollouts))
    config = load_config("tiny-cpu")
    table = write_report(run, config, _rows(), timings={"sft": 12.0}, wall_s=20.0)
    report = (run / "report.md").read_text()
    assert table in report and "Shop-R1" in table and "Zero-shot" in table
    assert "| sft | 12.0 |" in report and "grpo:" in report
    assert "## By page type" not in report, "no row names page types"
    for name in ("rewards.png", "exact_match.png", "kl_loss.png", "predicted_types.png", "rollout_types_by_gold.png",
                 "rollout_types_by_page.png"):
        png = run / "plots" / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"plots/{name}" in report
    saved = json.loads((run / "results.json").read_text())
    assert saved["rows"]["Shop-R1"]["exact_match"] == pytest.approx(1.0)


def test_report_compares_every_row_with_sft_on_the_same_states(tmp_path):
    from agents import HeuristicAgent, OracleAgent, RandomAgent
    from agents.evaluation import evaluate
    from shop_env.observations import build_states
    from shop_env.synthetic import generate_sessions
    from training.pipeline import EVAL_DIRS, HEURISTIC, RL_EVAL_DIR, SFT_ROW, versus_sft

    states = build_states(generate_sessions(10, seed=2))
    ev = tmp_path / "run" / "eval"
    agents = {SFT_ROW: (RandomAgent(seed=0), EVAL_DIRS[SFT_ROW]), "Shop-R1": (OracleAgent.from_states(states), RL_EVAL_DIR),
              HEURISTIC: (HeuristicAgent(), EVAL_DIRS[HEURISTIC])}
    rows = {label: evaluate(agent, states, ev / sub, progress=False) for label, (agent, sub) in agents.items()}
    comparisons = versus_sft(ev, rows)
    assert list(comparisons) == ["Shop-R1", HEURISTIC]
    gain = comparisons["Shop-R1"]["exact_match"]
    assert gain["diff"] == pytest.approx(rows["Shop-R1"]["exact_match"] - rows[SFT_ROW]["exact_match"])
    assert gain["n"] == len(states)
    write_report(tmp_path / "run", load_config("tiny-cpu"), rows, comparisons=comparisons)
    report = (tmp_path / "run" / "report.md").read_text()
    assert "## Versus SFT, paired" in report and f"on the same {len(states)} states" in report
    assert f"| Shop-R1 | {100 * gain['diff']:+.1f} [" in report
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["versus_sft"]["Shop-R1"]["exact_match"]["diff"] == pytest.approx(gain["diff"])
    assert versus_sft(ev, {"Shop-R1": rows["Shop-R1"]}) == {}  # no SFT row, nothing to compare with
    # A row whose predictions are missing is skipped, the others still compared; no SFT file, no table.
    (ev / EVAL_DIRS[HEURISTIC] / "predictions.jsonl").unlink()
    assert list(versus_sft(ev, rows)) == ["Shop-R1"]
    (ev / EVAL_DIRS[SFT_ROW] / "predictions.jsonl").unlink()
    assert versus_sft(ev, rows) == {}


def test_the_report_compares_rows_by_page_type(tmp_path):
    from agents.evaluation import by_page_type

    def record(page, gold, pred):
        return {"page_type": page, "gold": {"type": gold}, "pred": {"type": pred}, "exact_match": gold == pred,
                "type_match": gold == pred}

    sft = [record("search", "terminate", "click"), record("search", "click", "click"), record("cart", "click", "click")]
    rl = [record("search", "terminate", "terminate"), record("search", "click", "terminate"),
          record("cart", "click", "click")]
    rows = _rows()
    rows["SFT"] = dict(rows["Zero-shot"], by_page_type=by_page_type(sft))
    rows["Shop-R1"] = dict(rows["Shop-R1"], by_page_type=by_page_type(rl))
    write_report(tmp_path, load_config("tiny-cpu"), rows)
    report = (tmp_path / "report.md").read_text()
    assert "| Model | cart (1) | search (2) |" in report
    assert "| logged actions | - / 0 | - / 50 |" in report
    assert "| SFT | 100.0 / 0 | 50.0 / 0 |" in report and "| Shop-R1 | 100.0 / 0 | 50.0 / 100 |" in report


def test_plots_skip_an_empty_log(tmp_path):
    assert plot_training([], tmp_path) == []
    assert plot_rollout_types([{"step": 1, "gold": "{torn"}, {"gold": json.dumps({"type": "click"})}], tmp_path) == []


def test_rollout_shares_split_terminate_learning_from_terminate_hacking(tmp_path):
    def row(step, gold, predicted):
        return {"step": step, "gold": json.dumps({"type": gold}), "predicted": predicted}

    rollouts = [row(1, "terminate", "click"), row(1, "terminate", "terminate"), row(1, "click", "click"),
                row(2, "terminate", "terminate"), row(2, "click", "terminate"), row(2, "click", "invalid"),
                {"step": 2, "gold": "{torn"}]
    shares = rollout_type_shares(rollouts)
    assert shares == {"click": {1: {"click": 1.0}, 2: {"terminate": 0.5, "invalid": 0.5}},
                      "terminate": {1: {"click": 0.5, "terminate": 0.5}, 2: {"terminate": 1.0}}}
    # By page: leaving learnt on results pages, not on the cart.
    for record, page in zip(rollouts, ["search", "search", "cart", "search", "cart", "cart"], strict=False):
        record["page_type"] = page
    assert rollout_type_shares(rollouts, by="page_type") == {
        "cart": {1: {"click": 1.0}, 2: {"terminate": 0.5, "invalid": 0.5}},
        "search": {1: {"click": 0.5, "terminate": 0.5}, 2: {"terminate": 1.0}}}
    assert [p.name for p in plot_rollout_types(rollouts, tmp_path)] == ["rollout_types_by_gold.png",
                                                                       "rollout_types_by_page.png"]
    with pytest.raises(ValueError, match="page_type"):
        rollout_type_shares(rollouts, by="session")


QUICK = ["data.sessions=synthetic:16?seed=3", "sft.max_steps=2", "sft.batch_size=2", "grpo.steps=2",
         "grpo.batch_size=2", "grpo.num_generations=2", "grpo.max_completion_tokens=8", "grpo.save_steps=1",
         "eval.max_states=4", "eval.max_new_tokens=8", "eval.batch_size=4", "data.max_prompt_tokens=512"]


@pytest.mark.slow
def test_whole_pipeline_cli_runs_and_resumes(tmp_path):
    cmd = [sys.executable, str(REPO / "training" / "grpo.py"), "--out", str(tmp_path), "--name", "quick",
           "--threads", "1", "--no-progress"]
    for item in QUICK:
        cmd += ["--set", item]
    # Without the zero-shot row first; the resume below (eval.zero_shot: true) adds it.
    first = subprocess.run(cmd + ["--set", "eval.zero_shot=false"], cwd=REPO, capture_output=True, text=True,
                           timeout=900)
    assert first.returncode == 0, first.stderr[-3000:]
    run = tmp_path / "quick"
    for label in ("SFT", "Shop-R1"):
        assert label in first.stdout
    assert "Zero-shot" not in first.stdout
    assert "## Versus SFT, paired" in (run / "report.md").read_text()
    for path in ("config.yaml", "report.md", "results.json", "metrics.jsonl", "grpo/metrics.jsonl", "grpo/final/config.json",
                 "sft/final/config.json", "plots/rewards.png", "plots/exact_match.png"):
        assert (run / path).is_file(), path
    assert [r["step"] for r in read_metrics(run / "grpo" / "metrics.jsonl")] == [1, 2]
    first_seconds = json.loads((run / "results.json").read_text())["timings"]
    assert "| stage | seconds |" in (run / "report.md").read_text(), "one attempt: one column"
    again = subprocess.run(cmd + ["--resume"], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "SFT: reusing" in again.stderr and "GRPO: reusing" in again.stderr
    assert "Zero-shot" in again.stdout and "Zero-shot" in (run / "report.md").read_text()
    # The reused stages took a moment this time; the report keeps what the first attempt spent.
    resumed = json.loads((run / "results.json").read_text())
    for stage in ("sft", "grpo"):
        assert resumed["timings_all_attempts"][stage] == pytest.approx(
            first_seconds[stage] + resumed["timings"][stage], abs=0.11)
    assert "| stage | this attempt | all attempts |" in (run / "report.md").read_text()
    assert [r["step"] for r in read_metrics(run / "grpo" / "metrics.jsonl")] == [1, 2]


@pytest.mark.parametrize(("preset", "overrides", "label"), [
    ("paper-qwen2.5-3b", [], "Shop-R1"),
    ("ablation-latest-step", [], "Shop-R1 (latest-step context)"),
    ("ablation-no-dars", [], "SFT + RL (ablation-no-dars)"),
    ("ablation-no-sft", [], "RL (ablation-no-sft)"),
    ("tiny-cpu", [], "Shop-R1 (latest-step context)"),
])
def test_rl_rows_are_labelled_by_what_was_trained(preset, overrides, label):
    from training.pipeline import rl_label

    assert rl_label(load_config(preset, overrides)) == label
