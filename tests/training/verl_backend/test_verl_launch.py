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
    merge_overrides,
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
    assert sft[1:3] == ["-m", "torch.distributed.run"]  # torchrun of the interpreter running the plan
    assert sft[3:7] == ["--standalone", "--nnodes=1", "--nproc_per_node=8", "-m"]
    assert sft[7] == "verl.trainer.sft_trainer"
    s = parse_overrides(sft[8:])
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
    s, g = parse_overrides(sft[8:]), parse_overrides(grpo[3:])
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


def test_merge_overrides_replaces_in_place_and_appends_the_rest() -> None:
    plan = ["a.b=1", "+c.d=x", "e=[1,2]"]
    merged = merge_overrides(plan, ["a.b=2", "c.d=y", "+new.key=3", "~drop.me=null"])
    assert merged == ["a.b=2", "+c.d=y", "e=[1,2]", "+new.key=3", "~drop.me=null"]
    assert merge_overrides(plan, ["+a.b=5"])[0] == "+a.b=5"  # an explicit prefix wins
    assert merge_overrides(plan, ["n=1", "n=2"]) == [*plan, "n=2"]  # the last of repeats wins
    with pytest.raises(ValueError, match="key=value"):
        merge_overrides(plan, ["no-equals-sign"])


@given(st.dictionaries(st.sampled_from(["a", "b.c", "d.e.f", "g"]), st.integers(), max_size=4),
       st.dictionaries(st.sampled_from(["a", "b.c", "x", "y.z"]), st.integers(), max_size=4))
def test_merged_overrides_read_back_as_the_plan_updated_by_the_extras(plan: dict, extra: dict) -> None:
    merged = merge_overrides([f"{k}={v}" for k, v in plan.items()], [f"{k}={v}" for k, v in extra.items()])
    assert parse_overrides(merged) == {k: str(v) for k, v in {**plan, **extra}.items()}
    assert len(merged) == len({**plan, **extra})


def test_cli_verl_overrides_reach_each_stage(capsys, tmp_path) -> None:
    from training.cli import main

    code = main(["--backend", "verl", "--dry-run", "--out", str(tmp_path), "--set", "sft.max_steps=7",
                 "--verl-set", "trainer.device=cpu", "--verl-set", "data.train_batch_size=3",
                 "--verl-set", "+ray_kwargs.ray_init.num_gpus=1", "--verl-sft-set", "engine.strategy=fsdp2"])
    assert code == 0
    text = capsys.readouterr().out
    sft, grpo = _commands(text[text.index("# verl launch plan"):])
    g, s = parse_overrides(grpo[3:]), parse_overrides(sft[8:])
    assert g["trainer.device"] == "cpu" and g["+ray_kwargs.ray_init.num_gpus"] == "1"
    assert g["data.train_batch_size"] == "3"
    assert [item for item in grpo if item.startswith("data.train_batch_size=")] == ["data.train_batch_size=3"]
    assert s["engine.strategy"] == "fsdp2" and "engine.strategy" not in g
    assert "trainer.device" not in s
    assert s["trainer.total_training_steps"] == "7"  # sft.max_steps sets verl's SFT length as it does locally
    assert s["trainer.total_epochs"] == "7"  # so verl's epochs never end the stage first (no final checkpoint)


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--backend", "verl", "--verl-set", "novalue"], "need KEY=VALUE"),
     (["--backend", "verl", "--verl-sft-set", "=1"], "need KEY=VALUE"),
     (["--verl-set", "trainer.device=cpu"], "verl backend only")],
)
def test_cli_rejects_bad_verl_overrides(capsys, tmp_path, args, message) -> None:
    from training.cli import main

    assert main([*args, "--dry-run", "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


def test_checkpoints_are_labelled_with_their_prompt_settings(tmp_path) -> None:
    from shop_env.prompt_settings import PromptSettings

    config = load_config("tiny-cpu", ["backend=verl", "data.max_history=1"])
    for folder in ("sft/global_step_9/huggingface", "checkpoints/global_step_2/actor/huggingface",
                   "checkpoints/global_step_10/actor/huggingface"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "config.json").write_text("{}")
    (tmp_path / "checkpoints/global_step_11/actor").mkdir(parents=True)  # shards only: not a model
    labelled = launch.label_exports(tmp_path, config)
    assert len(labelled) == 3
    saved = PromptSettings.load(tmp_path / "checkpoints/global_step_10/actor/huggingface")
    assert (saved.context, saved.max_history, saved.max_prompt_tokens, saved.page_format) == (
        config.data.context, 1, config.data.max_prompt_tokens, config.data.page_format)
    assert launch.latest_grpo_export(tmp_path / "checkpoints") == tmp_path / "checkpoints/global_step_10/actor/huggingface"
    with pytest.raises(launch.LaunchError, match="no GRPO checkpoint"):
        launch.latest_grpo_export(tmp_path / "sft")


def test_grpo_checkpoints_keep_an_hf_model(capsys, tmp_path) -> None:
    config = load_config("tiny-cpu", ["backend=verl"])
    _, grpo = _commands(_dry_run(capsys, config, out_root=tmp_path)[1])
    assert parse_overrides(grpo[3:])["actor_rollout_ref.actor.checkpoint.save_contents"] == \
        "[model,optimizer,extra,hf_model]"


def test_a_rerun_reuses_the_finished_sft_stage_and_names_the_trained_model(capsys, tmp_path, monkeypatch) -> None:
    """verl's SFT trainer, restarted on a finished run, trains one more step; the launcher
    reuses the finished stage instead, and GRPO (which resumes by itself) runs again."""
    calls = []

    def fake_stage(name, argv):
        calls.append(name)
        run_dir = tmp_path / "tiny-cpu" / "verl"
        if name == "SFT":
            model = run_dir / "sft" / f"global_step_{5 * len(calls)}" / "huggingface"
            model.mkdir(parents=True)
            (model / "config.json").write_text("{}")
        else:
            model = run_dir / "checkpoints" / f"global_step_{len(calls)}" / "actor" / "huggingface"
            model.mkdir(parents=True)
            (model / "config.json").write_text("{}")
        return 0

    monkeypatch.setattr(launch, "prepare", lambda plan, config: plan.run_dir.mkdir(parents=True, exist_ok=True))
    monkeypatch.setattr(launch, "run_stage", fake_stage)
    config = load_config("tiny-cpu", ["backend=verl"])
    assert launch.run(config, dry_run=False, out_root=tmp_path) == 0
    first = capsys.readouterr().out
    assert calls == ["SFT", "GRPO"]
    sft_model = tmp_path.resolve() / "tiny-cpu" / "verl" / "sft" / "global_step_5" / "huggingface"
    assert f"[verl] GRPO starts from {sft_model}" in first
    assert "[verl] trained model:" in first and "benchmarks/evaluate.py --agent hf:" in first
    assert launch.run(config, dry_run=False, out_root=tmp_path) == 0
    second = capsys.readouterr().out
    assert calls == ["SFT", "GRPO", "GRPO"]
    assert f"[verl] SFT: reusing {sft_model}" in second
    assert (sft_model / "prompt_settings.json").is_file()


@pytest.mark.parametrize(("precision", "ray_address", "fp32"), [
    ("fp32", None, True), ("fp32", "http://head:8265", True), ("auto", "http://head:8265", False)])
def test_float32_reaches_fsdp_and_the_rollout_where_asked_or_resolved(capsys, tmp_path, precision, ray_address,
                                                                       fp32) -> None:
    """verl computes in bf16 by default, which a CPU without bf16 only emulates: ``precision``
    resolved to fp32 here (or asked for explicitly on a cluster) makes FSDP and vLLM use float32."""
    config = load_config("tiny-cpu", ["backend=verl", f"precision={precision}"])
    plan = launch.build_plan(config, out_root=tmp_path, ray_address=ray_address)
    sft, grpo = " ".join(plan.sft_command), " ".join(plan.grpo_command)
    for key in ("param_dtype", "reduce_dtype", "buffer_dtype"):
        assert (f"+engine.mixed_precision.{key}=fp32" in sft) == fp32
        assert (f"+actor_rollout_ref.actor.fsdp_config.mixed_precision.{key}=fp32" in grpo) == fp32
        assert (f"+actor_rollout_ref.ref.fsdp_config.mixed_precision.{key}=fp32" in grpo) == fp32
    assert ("actor_rollout_ref.rollout.dtype=float32" in grpo) == fp32
