"""Our launch overrides compose against verl's own Hydra configs; our trainer registers in verl."""

from __future__ import annotations

import pytest

pytest.importorskip("verl")

from hydra import compose, initialize_config_module  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from training.config import load_config  # noqa: E402
from training.verl_backend.launch import build_plan  # noqa: E402
from training.verl_backend.overrides import with_required_overrides  # noqa: E402


def _compose(name: str, overrides: list[str]):
    with initialize_config_module(config_module="verl.trainer.config", version_base=None):
        return compose(config_name=name, overrides=overrides)


@pytest.fixture(scope="module")
def plan(tmp_path_factory):
    config = load_config("paper-qwen2.5-3b", ["backend=verl"])
    return build_plan(config, nnodes=1, n_gpus_per_node=8, out_root=tmp_path_factory.mktemp("runs"))


def test_grpo_overrides_compose_with_ppo_trainer(plan) -> None:
    args = plan.grpo_command[plan.grpo_command.index("training.verl_backend.entry") + 1:]
    cfg = _compose("ppo_trainer", with_required_overrides(args))
    OmegaConf.resolve(cfg)  # every interpolation resolves
    assert cfg.algorithm.adv_estimator == "grpo"
    assert cfg.actor_rollout_ref.rollout.name == "vllm"
    assert cfg.actor_rollout_ref.rollout.n == 8
    assert cfg.actor_rollout_ref.rollout.temperature == 0.6
    assert cfg.actor_rollout_ref.actor.use_kl_loss is True
    assert cfg.actor_rollout_ref.actor.kl_loss_coef == 0.001
    assert cfg.actor_rollout_ref.actor.optim.lr == 1e-7
    assert cfg.data.train_batch_size * cfg.actor_rollout_ref.rollout.n == 64
    assert cfg.trainer.total_training_steps == 500
    assert cfg.trainer.v1.trainer_mode == "shop_r1_sync"
    assert cfg.reward.custom_reward_function.name == "compute_score"
    assert cfg.reward.custom_reward_function.reward_kwargs.dars_factor == 1000.0
    assert cfg.reward.custom_reward_function.reward_kwargs.self_certainty_variant == "kl_p_u"
    assert list(cfg.data.train_files) == [str(plan.files.train)]
    assert cfg.ray_kwargs.ray_init.runtime_env.worker_process_setup_hook.endswith("setup_worker")
    # the rollout sees the prompt and response budgets we set
    assert cfg.actor_rollout_ref.rollout.prompt_length == cfg.data.max_prompt_length
    assert cfg.actor_rollout_ref.rollout.response_length == 512
    # launch robustness: a local Ray with room for TransferQueue, and sdpa without flash-attn
    assert cfg.ray_kwargs.ray_init.num_cpus >= 16
    import importlib.util

    if importlib.util.find_spec("flash_attn") is None:
        assert cfg.actor_rollout_ref.model.override_config.attn_implementation == "sdpa"


@pytest.mark.parametrize(("preset", "nnodes", "n_gpus"),
                         [("paper-qwen2.5-3b", 1, 1), ("paper-qwen2.5-3b", 1, 8), ("paper-qwen2.5-3b", 2, 8),
                          ("tiny-cpu", 1, 8)])
def test_grpo_config_passes_verl_validation(preset, nnodes, n_gpus, tmp_path) -> None:
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config

    plan = build_plan(load_config(preset, ["backend=verl"]), nnodes=nnodes, n_gpus_per_node=n_gpus,
                      ray_address="http://head:8265" if nnodes > 1 else None, out_root=tmp_path)
    args = plan.grpo_command[plan.grpo_command.index("training.verl_backend.entry") + 1:]
    cfg = _compose("ppo_trainer", with_required_overrides(args))
    assert need_reference_policy(cfg)  # the KL loss needs the reference model
    assert not need_critic(cfg)  # GRPO: no critic
    validate_config(config=cfg, use_reference_policy=True, use_critic=False)


def test_sft_overrides_compose_with_sft_trainer(plan) -> None:
    args = plan.sft_command[plan.sft_command.index("verl.trainer.sft_trainer") + 1:]
    cfg = _compose("sft_trainer_engine", args)
    OmegaConf.resolve(cfg)
    assert cfg.model.path == "Qwen/Qwen2.5-3B-Instruct"
    assert cfg.optim.lr == 2e-5
    assert cfg.trainer.total_epochs == 4
    assert cfg.data.messages_key == "messages"
    import importlib.util

    if importlib.util.find_spec("flash_attn") is None:
        assert cfg.model.override_config.attn_implementation == "sdpa"
    assert "hf_model" in list(cfg.checkpoint.save_contents)


def test_float32_overrides_compose_and_pass_validation(tmp_path) -> None:
    from verl.utils.config import validate_config

    plan = build_plan(load_config("tiny-cpu", ["backend=verl", "precision=fp32"]), out_root=tmp_path)
    sft = _compose("sft_trainer_engine", plan.sft_command[plan.sft_command.index("verl.trainer.sft_trainer") + 1:])
    assert dict(sft.engine.mixed_precision) == {"param_dtype": "fp32", "reduce_dtype": "fp32", "buffer_dtype": "fp32"}
    args = plan.grpo_command[plan.grpo_command.index("training.verl_backend.entry") + 1:]
    cfg = _compose("ppo_trainer", with_required_overrides(args))
    OmegaConf.resolve(cfg)
    assert cfg.actor_rollout_ref.actor.fsdp_config.mixed_precision.param_dtype == "fp32"
    assert cfg.actor_rollout_ref.ref.fsdp_config.mixed_precision.param_dtype == "fp32"
    assert cfg.actor_rollout_ref.rollout.dtype == "float32"
    validate_config(config=cfg, use_reference_policy=True, use_critic=False)


def test_trainer_is_registered_by_name() -> None:
    pytest.importorskip("transfer_queue")  # verl's V1 trainer imports it
    from verl.trainer.ppo.v1 import get_trainer_cls
    from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

    from training.verl_backend import verl_trainer

    cls = get_trainer_cls("shop_r1_sync")
    assert cls is verl_trainer.ShopR1Trainer and issubclass(cls, PPOTrainerSync)
    # the hooks it overrides still exist in this verl (a rename would silently skip them)
    for name in ("_compute_old_log_prob", "_init_tokenizer"):
        assert callable(getattr(PPOTrainerSync, name))
    verl_trainer.setup_worker()  # the Ray worker_process_setup_hook is importable and callable


def test_run_config_reward_reads_reward_kwargs(plan) -> None:
    pytest.importorskip("transfer_queue")
    from training.verl_backend.verl_trainer import run_config_reward

    args = plan.grpo_command[plan.grpo_command.index("training.verl_backend.entry") + 1:]
    cfg = _compose("ppo_trainer", with_required_overrides(args + [
        "reward.custom_reward_function.reward_kwargs.self_certainty_alpha=0.5"]))
    assert run_config_reward(cfg).self_certainty_alpha == 0.5
