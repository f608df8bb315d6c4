"""Global batches split over devices, rollout generation sizing, and the memory estimate."""

import pytest

from training.batching import (
    KNOWN_ARCHITECTURES,
    Architecture,
    BatchPlan,
    estimate_memory,
    generation_steps,
    resolve_batch,
    world_size,
)
from training.config import ConfigError, load_config
from training.grpo import main as grpo_main


@pytest.mark.parametrize(("global_batch", "micro", "devices", "expected"), [
    (64, 1, 8, BatchPlan(64, 1, 8, 8)),
    (64, 1, 1, BatchPlan(64, 1, 64, 1)),
    (64, None, 8, BatchPlan(64, 8, 1, 8)),
    (8, None, 1, BatchPlan(8, 8, 1, 1)),
    (48, 2, 4, BatchPlan(48, 2, 6, 4)),
])
def test_the_global_batch_is_the_same_on_any_number_of_devices(global_batch, micro, devices, expected):
    plan = resolve_batch(global_batch, micro, devices)
    assert plan == expected
    assert plan.per_device * plan.accumulation * plan.world_size == global_batch


@pytest.mark.parametrize(("args", "message"), [
    ((64, 1, 3), "cannot be split evenly over 3 devices"),
    ((64, 3, 8), r"use one of \[1, 2, 4, 8\]"),
    ((0, None, 1), "must be an integer >= 1"),
    ((8, 0, 1), "micro-batch must be an integer >= 1"),
])
def test_batches_that_do_not_divide_are_refused_with_the_fix(args, message):
    with pytest.raises(ValueError, match=message):
        resolve_batch(*args, key="grpo.batch_size")


def test_grpo_groups_must_divide_the_global_batch():
    with pytest.raises(ValueError, match="multiple of 8"):
        resolve_batch(12, None, 1, multiple_of=8)


@pytest.mark.parametrize(("plan", "groups", "steps"), [
    (BatchPlan(64, 1, 8, 8), 8, 1),   # 8 GPUs x 1 completion: one group per micro-step
    (BatchPlan(64, 1, 64, 1), 8, 8),  # 1 GPU: a group needs 8 micro-steps
    (BatchPlan(8, 8, 1, 1), 4, 1),
    (BatchPlan(12, 2, 2, 3), 4, 2),   # 6 per micro-step: 12 completions hold whole groups of 4
])
def test_rollouts_are_generated_in_whole_groups(plan, groups, steps):
    assert generation_steps(plan, groups) == steps
    assert (plan.per_device * plan.world_size * steps) % groups == 0


def test_world_size_comes_from_the_launcher(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert world_size() == 1
    monkeypatch.setenv("WORLD_SIZE", "8")
    assert world_size() == 8
    assert load_config("paper-qwen2.5-3b").batch_plans()["sft"] == BatchPlan(64, 1, 8, 8)
    monkeypatch.setenv("WORLD_SIZE", "eight")
    with pytest.raises(ValueError, match="WORLD_SIZE must be a positive integer"):
        world_size()


def test_grpo_trainer_arguments_follow_the_plan(monkeypatch, tmp_path):
    pytest.importorskip("trl")
    from training.grpo_train import grpo_args

    monkeypatch.setenv("WORLD_SIZE", "1")
    args = grpo_args(load_config("paper-qwen2.5-3b"), tmp_path)
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps) == (1, 64)
    assert args.steps_per_generation == 8 and args.generation_batch_size == 8
    assert args.activation_checkpointing
    small = grpo_args(load_config("tiny-cpu"), tmp_path)
    assert (small.per_device_train_batch_size, small.gradient_accumulation_steps, small.steps_per_generation) == (8, 1, 1)


def test_a_bad_micro_batch_is_a_config_error():
    with pytest.raises(ConfigError, match="sft.batch_size=64 over 1 devices is 64 per device"):
        load_config("paper-qwen2.5-3b", ["sft.micro_batch_size=5"]).batch_plans(1)
    with pytest.raises(ConfigError, match="'grpo.micro_batch_size' must be >= 1"):
        load_config("tiny-cpu", ["grpo.micro_batch_size=0"])


def test_known_architectures_match_their_configs():
    from transformers import LlamaConfig, Qwen2Config

    qwen = Qwen2Config(hidden_size=2048, intermediate_size=11008, num_hidden_layers=36, num_attention_heads=16,
                       num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True)
    smol = LlamaConfig(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                       num_key_value_heads=3, vocab_size=49152, tie_word_embeddings=True)
    for config, name in ((qwen, "Qwen/Qwen2.5-3B-Instruct"), (smol, "smollm2-135m")):
        derived = Architecture.from_config(config)
        known = KNOWN_ARCHITECTURES[name]
        assert abs(derived.n_params - known.n_params) / known.n_params < 0.03
        assert (derived.n_layers, derived.hidden, derived.n_kv_heads) == (known.n_layers, known.hidden, known.n_kv_heads)


def test_memory_estimate_parts():
    arch = KNOWN_ARCHITECTURES["Qwen/Qwen2.5-3B-Instruct"]
    base = dict(seq_tokens=32768, micro_batch=1, supervised_tokens=1024)
    dense = estimate_memory(arch, gradient_checkpointing=False, **base)
    checkpointed = estimate_memory(arch, gradient_checkpointing=True, **base)
    assert dense.weights == dense.gradients == 4 * arch.n_params and dense.optimizer == 8 * arch.n_params
    assert checkpointed.activations < dense.activations / 10
    assert checkpointed.total / 2**30 < 80 < dense.total / 2**30
    sharded = estimate_memory(arch, gradient_checkpointing=True, shards=8, **base)
    assert sharded.optimizer == checkpointed.optimizer / 8
    rollout = estimate_memory(arch, gradient_checkpointing=True, generation_tokens=1000, generation_batch=2, **base)
    assert rollout.kv_cache == 2 * 36 * 2 * 128 * 2 * 1000 * 2


@pytest.mark.parametrize("devices", [1, 8])
def test_dry_run_prints_batches_and_memory(capsys, devices):
    assert grpo_main(["--config", "paper-qwen2.5-3b", "--dry-run", "--world-size", str(devices)]) == 0
    out = capsys.readouterr().out
    accumulation = 64 // devices
    assert f"sft: 64 = 1 per device x {accumulation} accumulation x {devices} device" in out
    assert "gradient checkpointing on" in out
    assert "memory per device" in out and "GiB per device" in out


def test_dry_run_refuses_an_impossible_world_size(capsys):
    assert grpo_main(["--config", "paper-qwen2.5-3b", "--dry-run", "--world-size", "3"]) == 2
    assert "error: sft.batch_size=64 cannot be split evenly over 3 devices" in capsys.readouterr().err
