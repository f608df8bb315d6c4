"""training.config: presets, extends, overrides and unknown-key errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from training.config import ConfigError, TrainConfig, config_from_dict, load_config, preset_names

REPO = Path(__file__).resolve().parents[2]
ABLATIONS = ("ablation-no-sft", "ablation-no-format", "ablation-no-self-certainty", "ablation-no-dars",
             "ablation-binary", "ablation-latest-step", "rl-binary", "sft-rl-binary")


def test_every_required_preset_exists_and_resolves():
    names = preset_names()
    for name in ("tiny-cpu", "paper-qwen2.5-3b", *ABLATIONS):
        assert name in names
        config = load_config(name)
        assert isinstance(config, TrainConfig)
        assert config.name == name


def test_paper_preset_has_the_paper_settings():
    c = load_config("paper-qwen2.5-3b")
    assert (c.sft.epochs, c.sft.learning_rate) == (4, 2e-5)
    assert (c.grpo.steps, c.grpo.learning_rate, c.grpo.batch_size) == (500, 1e-7, 64)
    assert (c.grpo.temperature, c.grpo.kl_beta) == (0.6, 0.001)
    assert c.reward.dars_factor == 1000 and c.reward.self_certainty_alpha == 0.005
    assert c.data.context == "whole-session"


def test_ablations_differ_from_the_paper_preset_only_in_their_switch():
    base = load_config("paper-qwen2.5-3b").to_dict()
    switches = {
        "ablation-no-sft": {("sft", "enabled"): False},
        "ablation-no-format": {("reward", "use_format"): False},
        "ablation-no-self-certainty": {("reward", "use_self_certainty"): False},
        "ablation-no-dars": {("reward", "dars_factor"): 1},
        "ablation-binary": {("reward", "action_reward"): "binary"},
        "ablation-latest-step": {("data", "context"): "latest-step"},
    }
    for name, expected in switches.items():
        got = load_config(name).to_dict()
        diffs = {(s, k): v for s, sec in got.items() if isinstance(sec, dict)
                 for k, v in sec.items() if base[s].get(k) != v}
        assert diffs == expected, name


def test_rl_binary_baselines():
    rl, sft_rl = load_config("rl-binary"), load_config("sft-rl-binary")
    assert rl.reward.action_reward == sft_rl.reward.action_reward == "binary"
    assert rl.sft.enabled is False and sft_rl.sft.enabled is True


def test_overrides_are_yaml_typed_and_dotted():
    c = load_config("tiny-cpu", ["grpo.steps=2", "grpo.kl_beta=0", "data.max_history=null",
                                 "sft.enabled=false", "reward.dars_factor=10", "model=./somewhere"])
    assert c.grpo.steps == 2 and c.grpo.kl_beta == 0.0 and isinstance(c.grpo.kl_beta, float)
    assert c.data.max_history is None and c.sft.enabled is False
    assert c.reward.dars_factor == 10 and c.model == "./somewhere"


@pytest.mark.parametrize("override, named, hint", [
    ("grpo.stepz=2", "grpo.stepz", "grpo.steps"),
    ("trainer.steps=2", "trainer", None),
    ("reward.dars=3", "reward.dars", "reward.dars_factor"),
    ("eval.max_state=3", "eval.max_state", "eval.max_states"),
])
def test_unknown_override_key_fails_naming_it_and_a_close_match(override, named, hint):
    with pytest.raises(ConfigError) as err:
        load_config("tiny-cpu", [override])
    assert repr(named) in str(err.value)
    if hint:
        assert repr(hint) in str(err.value)


def test_unknown_key_in_a_file_fails_naming_it(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("extends: tiny-cpu\nname: mine\ngrpo:\n  temprature: 0.7\n")
    with pytest.raises(ConfigError, match="'grpo.temprature'.*'grpo.temperature'"):
        load_config(path)


def test_extends_a_file_and_cycles(tmp_path):
    (tmp_path / "a.yaml").write_text("extends: tiny-cpu\nname: a\ngrpo: {steps: 3}\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\nname: b\nsft: {epochs: 1}\n")
    c = load_config(tmp_path / "b.yaml")
    assert (c.name, c.grpo.steps, c.sft.epochs) == ("b", 3, 1.0)
    assert c.grpo.num_generations == load_config("tiny-cpu").grpo.num_generations
    (tmp_path / "x.yaml").write_text("extends: y.yaml\n")
    (tmp_path / "y.yaml").write_text("extends: x.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "x.yaml")


def test_bad_values_fail_with_the_key():
    for override, key in [("grpo.steps=abc", "grpo.steps"), ("grpo.steps=0", "grpo.steps"),
                          ("data.context=everything", "data.context"), ("sft.enabled=3", "sft.enabled"),
                          ("grpo.batch_size=7", "grpo.batch_size")]:
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            load_config("tiny-cpu", [override])
    with pytest.raises(ConfigError, match="unknown config 'no-such-preset'"):
        load_config("no-such-preset")


def test_resolved_config_round_trips_through_yaml():
    c = load_config("ablation-no-dars", ["grpo.steps=7"])
    again = config_from_dict(yaml.safe_load(c.to_yaml()))
    assert again == c


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz_.", min_size=1, max_size=20), st.integers())
def test_any_override_either_resolves_or_raises_config_error(key, value):
    try:
        load_config("tiny-cpu", [f"{key}={value}"])
    except ConfigError:
        pass


def test_cli_dry_run_prints_resolved_config_and_bad_key_exits_2(tmp_path):
    script = REPO / "training" / "grpo.py"
    ok = subprocess.run([sys.executable, str(script), "--dry-run", "--set", "grpo.steps=2", "--out", str(tmp_path)],
                        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    printed = yaml.safe_load(ok.stdout)
    assert printed["grpo"]["steps"] == 2 and printed["name"] == "tiny-cpu"
    assert not (tmp_path / "tiny-cpu").exists()  # a dry run trains nothing
    bad = subprocess.run([sys.executable, str(script), "--set", "grpo.stepz=2"], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "'grpo.stepz'" in bad.stderr and "'grpo.steps'" in bad.stderr
    helped = subprocess.run([sys.executable, str(script), "--help"], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert helped.returncode == 0 and "--resume" in helped.stdout and "tiny-cpu" in helped.stdout


def test_cli_verl_backend_dry_run_plans_and_a_real_run_without_verl_says_how_to_install(tmp_path):
    import importlib.util

    script = REPO / "training" / "grpo.py"
    plan = subprocess.run([sys.executable, str(script), "--backend", "verl", "--dry-run", "--nnodes", "2",
                           "--n-gpus", "8", "--ray-address", "http://head:8265", "--out", str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert plan.returncode == 0, plan.stderr
    assert "backend: verl" in plan.stdout and "trainer.nnodes=2" in plan.stdout
    if importlib.util.find_spec("verl") is None:
        run = subprocess.run([sys.executable, str(script), "--backend", "verl", "--out", str(tmp_path)], cwd=REPO,
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 2 and "verl" in run.stderr and "pip install" in run.stderr


@pytest.mark.parametrize("override, key", [
    ("grpo.temperature=-1", "grpo.temperature"), ("grpo.temperature=.nan", "grpo.temperature"),
    ("grpo.top_p=1.5", "grpo.top_p"), ("eval.max_states=0", "eval.max_states"),
    ("grpo.kl_beta=-0.1", "grpo.kl_beta"), ("sft.learning_rate=0", "sft.learning_rate"),
    ("data.test_fraction=1", "data.test_fraction"), ("data.max_prompt_tokens=0", "data.max_prompt_tokens"),
    ("precision=fp16", "precision"), ("grpo.loss_type=mean", "grpo.loss_type"),
    ("grpo.advantage_std_floor=-0.1", "grpo.advantage_std_floor"),
    ("grpo.advantage_std_floor=.inf", "grpo.advantage_std_floor"),
])
def test_bad_values_fail_at_start_up_naming_the_key(override, key):
    with pytest.raises(ConfigError, match=f"'{key}'"):
        load_config("tiny-cpu", [override])


@pytest.mark.parametrize("overrides", [["grpo.scale_rewards=none"], ["grpo.scale_rewards=batch"], ["backend=verl"]])
def test_a_std_floor_needs_group_scaling_on_the_local_backend(overrides):
    with pytest.raises(ConfigError, match="'grpo.advantage_std_floor'"):
        load_config("tiny-cpu", ["grpo.advantage_std_floor=0.1", *overrides])
    assert load_config("tiny-cpu", ["grpo.advantage_std_floor=0.1"]).grpo.advantage_std_floor == 0.1


def test_zero_kl_beta_and_null_limits_are_valid():
    config = load_config("tiny-cpu", ["grpo.kl_beta=0", "eval.max_states=null", "data.max_history=null"])
    assert config.grpo.kl_beta == 0 and config.eval.max_states is None


def test_help_lists_every_config_key_with_its_choices():
    import dataclasses
    import os

    from rewards import RewardConfig

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "training/grpo.py", "--help"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    defaults = TrainConfig()
    for item in dataclasses.fields(TrainConfig):
        value = getattr(defaults, item.name)
        keys = ([f"{item.name}.{f.name}" for f in dataclasses.fields(value)] if dataclasses.is_dataclass(value)
                else [item.name])
        if item.name == "reward":
            continue  # one line lists RewardConfig's fields with their defaults (below)
        for key in keys:
            assert f"  {key} " in done.stdout, key
    for reward_field in dataclasses.fields(RewardConfig):
        assert f"{reward_field.name}=" in done.stdout
    assert "[dapo|grpo|bnpo|dr_grpo]" in done.stdout and "[train|test|all]" in done.stdout


def test_choice_errors_come_from_field_metadata():
    with pytest.raises(ConfigError, match="'data.page_format' must be one of compact, html"):
        config_from_dict({"data": {"page_format": "pdf"}})
    with pytest.raises(ConfigError, match="'eval.split' must be one of train, test, all"):
        config_from_dict({"eval": {"split": "dev"}})
