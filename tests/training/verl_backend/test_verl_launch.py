"""verl launch plan: the dry run of a preset (no verl needed) and the Hydra override mapping."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from training.config import load_config
from training.verl_backend import launch
from training.verl_backend.overrides import (
    MIN_LOCAL_RAY_CPUS,
    REWARD_FN_PATH,
    SETUP_HOOK,
    TRAINER_MODE,
    hydra_value,
    local_ray_cpus,
    parse_overrides,
    with_required_overrides,
)


def _dry_run(capsys, config, **kwargs) -> tuple[int, str]:
    code = launch.run(config, dry_run=True, **kwargs)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _commands(text: str) -> list[list[str]]:
    """Commands of a rendered plan (comment lines dropped, continuations joined)."""
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    return [shlex.split(chunk.replace("\\\n", " ")) for chunk in body.split("\n\n") if chunk.strip()]


def test_paper_preset_dry_run(capsys, tmp_path) -> None:
    config = load_config("paper-qwen2.5-3b", ["backend=verl"])
    code, text = _dry_run(capsys, config, nnodes=1, n_gpus_per_node=8, out_root=tmp_path)
    assert code == 0
    assert not list(tmp_path.iterdir()), "a dry run writes nothing"
    sft, grpo = _commands(text)
    assert sft[:5] == ["torchrun", "--standalone", "--nnodes=1", "--nproc_per_node=8", "-m"]
    assert sft[5] == "verl.trainer.sft_trainer"
    s = parse_overrides(sft[6:])
    assert s["model.path"] == "Qwen/Qwen2.5-3B-Instruct"
    assert float(s["optim.lr"]) == config.sft.learning_rate == 2e-5
    assert s["trainer.total_epochs"] == "4"
    assert s["data.messages_key"] == "messages"
    assert s["data.train_batch_size"] == "64"
    assert "hf_model" in s["checkpoint.save_contents"]

    assert grpo[1:3] == ["-m", "training.verl_backend.entry"]
    g = parse_overrides(grpo[3:])
    assert g["algorithm.adv_estimator"] == "grpo"
    assert g["actor_rollout_ref.rollout.name"] == "vllm"
    assert g["actor_rollout_ref.rollout.n"] == "8"
    assert float(g["actor_rollout_ref.rollout.temperature"]) == 0.6
    assert g["actor_rollout_ref.actor.use_kl_loss"] == "true"
    assert float(g["actor_rollout_ref.actor.kl_loss_coef"]) == 0.001
    assert float(g["actor_rollout_ref.actor.optim.lr"]) == 1e-7
    assert g["data.train_batch_size"] == "8"  # 64 completions = 8 prompts x 8 generations
    assert g["actor_rollout_ref.actor.ppo_mini_batch_size"] == "8"
    assert g["trainer.total_training_steps"] == "500"
    assert g["trainer.save_freq"] == "50"
    assert g["data.max_response_length"] == "512"
    assert int(g["data.max_prompt_length"]) >= 30000
    assert g["trainer.n_gpus_per_node"] == "8" and g["trainer.nnodes"] == "1"
    assert g["reward.custom_reward_function.path"] == str(REWARD_FN_PATH)
    assert Path(g["reward.custom_reward_function.path"]).is_file()
    assert g["reward.custom_reward_function.name"] == "compute_score"
    kwargs = "+reward.custom_reward_function.reward_kwargs."
    assert float(g[kwargs + "dars_factor"]) == 1000.0
    assert float(g[kwargs + "self_certainty_alpha"]) == 0.005
    assert g[kwargs + "action_reward"] == "hierarchical"
    assert g[kwargs + "use_self_certainty"] == "true"
    assert g["trainer.v1.trainer_mode"] == TRAINER_MODE
    assert g["+ray_kwargs.ray_init.runtime_env.worker_process_setup_hook"] == SETUP_HOOK
    assert g["actor_rollout_ref.model.path"].endswith("/sft/global_step_LAST/huggingface")
    assert g["data.train_files"] == f"[{tmp_path.resolve()}/paper-qwen2.5-3b/verl/data/train.parquet]"
    assert "dars_factor: 1000.0" in text and "self_certainty_alpha: 0.005" in text


def test_ablations_reach_verl(capsys, tmp_path) -> None:
    config = load_config("ablation-binary", ["backend=verl", "sft.enabled=false", "grpo.kl_beta=0"])
    code, text = _dry_run(capsys, config, out_root=tmp_path)
    assert code == 0
    (grpo,) = _commands(text)
    g = parse_overrides(grpo)
    assert g["+reward.custom_reward_function.reward_kwargs.action_reward"] == "binary"
    assert g["actor_rollout_ref.actor.use_kl_loss"] == "false"
    assert g["actor_rollout_ref.model.path"] == config.model  # no SFT: GRPO starts from the base model


@pytest.mark.parametrize("flash_attn", [True, False])
def test_local_launch_is_robust_on_small_machines(capsys, tmp_path, monkeypatch, flash_attn) -> None:
    """A Ray that verl starts here gets enough logical CPUs for TransferQueue, models load
    with sdpa when flash-attn is missing, and Hydra writes inside the run folder."""
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: (object() if flash_attn else None) if name == "flash_attn"
                        else real_find_spec(name, *a))
    config = load_config("tiny-cpu", ["backend=verl"])
    code, text = _dry_run(capsys, config, out_root=tmp_path)
    assert code == 0
    sft, grpo = _commands(text)
    s, g = parse_overrides(sft[6:]), parse_overrides(grpo[3:])
    assert int(g["ray_kwargs.ray_init.num_cpus"]) >= MIN_LOCAL_RAY_CPUS
    run_dir = tmp_path.resolve() / "tiny-cpu" / "verl"
    assert g["hydra.run.dir"] == str(run_dir / "hydra" / "grpo")
    assert s["hydra.run.dir"] == str(run_dir / "hydra" / "sft")
    grpo_attn = g.get("+actor_rollout_ref.model.override_config.attn_implementation")
    sft_attn = s.get("+model.override_config.attn_implementation")
    assert (grpo_attn, sft_attn) == ((None, None) if flash_attn else ("sdpa", "sdpa"))
    assert ("attn_implementation=sdpa" in text) != flash_attn


def test_local_ray_cpus_never_below_the_transfer_queue_minimum() -> None:
    assert local_ray_cpus(2) == MIN_LOCAL_RAY_CPUS
    assert local_ray_cpus(64) == 64
    assert local_ray_cpus() >= MIN_LOCAL_RAY_CPUS


def test_cluster_submits_ray_jobs(capsys, tmp_path) -> None:
    config = load_config("paper-qwen2.5-3b", ["backend=verl"])
    code, text = _dry_run(capsys, config, nnodes=2, n_gpus_per_node=8, ray_address="http://head:8265",
                          out_root=tmp_path)
    assert code == 0
    sft, grpo = _commands(text)
    for command in (sft, grpo):
        assert command[:5] == ["ray", "job", "submit", "--address", "http://head:8265"]
        assert command[5] == "--"
    assert "verl.trainer.sft_trainer_ray" in sft
    assert "training.verl_backend.entry" in grpo
    assert parse_overrides(grpo)["trainer.nnodes"] == "2"
    assert not any(item.startswith("ray_kwargs.ray_init.num_cpus") for item in grpo), "a cluster counts its own CPUs"


@pytest.mark.parametrize(
    ("overrides", "kwargs", "message"),
    [
        ([], {"nnodes": 2}, "Ray cluster"),
        (["reward.self_certainty_variant=kl_u_p"], {}, "kl_u_p"),
        (["grpo.enabled=false"], {}, "grpo.enabled"),
        ([], {"n_gpus_per_node": 0}, ">= 1"),
    ],
)
def test_unlaunchable_configs_fail_clearly(capsys, tmp_path, overrides, kwargs, message) -> None:
    config = load_config("tiny-cpu", ["backend=verl", *overrides])
    code, text = _dry_run(capsys, config, out_root=tmp_path, **kwargs)
    assert code == 2
    assert message in text


def test_kl_u_p_is_fine_when_self_certainty_is_off(capsys, tmp_path) -> None:
    config = load_config("tiny-cpu", ["reward.self_certainty_variant=kl_u_p", "reward.use_self_certainty=false"])
    assert _dry_run(capsys, config, out_root=tmp_path)[0] == 0


def test_required_overrides_are_added_once() -> None:
    items = with_required_overrides(["data.train_batch_size=8"])
    assert items[0] == "data.train_batch_size=8"
    assert f"trainer.v1.trainer_mode={TRAINER_MODE}" in items
    assert any(i.startswith("+ray_kwargs.ray_init.runtime_env.worker_process_setup_hook=") for i in items)
    custom = with_required_overrides(["trainer.v1.trainer_mode=sync"])
    assert [i for i in custom if "trainer_mode" in i] == ["trainer.v1.trainer_mode=sync"]


def test_latest_sft_export_picks_the_last_step(tmp_path) -> None:
    for step in (5, 40, 100):
        (tmp_path / f"global_step_{step}" / "huggingface").mkdir(parents=True)
    (tmp_path / "global_step_200").mkdir()  # no HF export: not a candidate
    assert launch.latest_sft_export(tmp_path) == tmp_path / "global_step_100" / "huggingface"
    with pytest.raises(launch.LaunchError):
        launch.latest_sft_export(tmp_path / "nothing")


@pytest.mark.parametrize(
    ("value", "text"),
    [(True, "true"), (None, "null"), (3, "3"), (1e-7, "1e-07"), ("grpo", "grpo"), ("true", "'true'"),
     ("1000", "'1000'"), ("a b", "'a b'"), ("it's", "'it\\'s'"), (["x", 2], "[x,2]"), ("/a/b.parquet", "/a/b.parquet")],
)
def test_hydra_value_formatting(value, text) -> None:
    assert hydra_value(value) == text


@given(st.text(max_size=40))
def test_hydra_strings_are_plain_or_quoted(text: str) -> None:
    out = hydra_value(text)
    assert out == text or (out.startswith("'") and out.endswith("'"))


def _local_tokenizer_dir(path: Path) -> Path:
    """A small byte-level BPE saved like a model folder's tokenizer (no download)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(["<div>shop tent</div>"] * 10, trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>")
    # verl renders prompts with the chat template, and the export counts them the same way
    fast.chat_template = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    fast.save_pretrained(path)
    return path


def test_run_exports_then_reports_the_failing_stage(capsys, tmp_path) -> None:
    """Without verl here the GRPO stage fails; run() has exported the data first and returns its status."""
    import json

    from shop_env.sessions import write_jsonl
    from shop_env.synthetic import generate_sessions

    data = tmp_path / "sessions.jsonl"
    write_jsonl(generate_sessions(6, seed=3), data)
    model = _local_tokenizer_dir(tmp_path / "model")
    config = load_config("tiny-cpu", ["backend=verl", "sft.enabled=false", f"model={model}",
                                      f"data.sessions={data}", "data.max_prompt_tokens=4000"])
    code = launch.run(config, dry_run=False, out_root=tmp_path / "runs")
    err = capsys.readouterr().err
    assert code != 0 and "GRPO stage exited" in err
    run_dir = tmp_path / "runs" / "tiny-cpu" / "verl"
    assert (run_dir / "data" / "train.parquet").is_file() and (run_dir / "data" / "test.parquet").is_file()
    assert (run_dir / "config.yaml").is_file()
    saved = json.loads((run_dir / "launch.json").read_text())
    assert saved["grpo_command"][1:3] == ["-m", "training.verl_backend.entry"]


def test_missing_program_is_reported(capsys) -> None:
    assert launch.run_stage("SFT", ["definitely-not-a-program-xyz"]) == 127
    assert "could not start" in capsys.readouterr().err
