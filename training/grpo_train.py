"""GRPO on the env states with TRL's ``GRPOTrainer`` and the Shop-R1 reward.

The training data is the set of env states (:func:`shop_env.observations.build_states`): the
prompt is :func:`shop_env.prompt.build_messages` of the state's observation and the gold
action travels as a dataset column to :class:`training.grpo_reward.ShopR1Reward`.

Every logged step is appended to ``metrics.jsonl`` and every scored completion to
``rollouts.jsonl``; checkpoints go to ``checkpoints/``. Resuming continues from the last
checkpoint: lines of both logs past that checkpoint (written before the interruption) are
dropped, so no step is duplicated.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from agents.prefill import sharing_repeated_prompts
from training.checkpoints import (
    FINAL_DIR,
    METRICS_FILE,
    ROLLOUTS_FILE,
    last_checkpoint,
    metrics_callback,
    truncate_metrics,
)
from training.config import TrainConfig
from training.grpo_reward import GenerationCertainty, ShopR1Reward
from training.host_memory import host_memory_callback
from training.lm_head import trl_scores_completions_only

CHECKPOINTS = "checkpoints"


def build_grpo_dataset(
    states: Sequence[Any],
    *,
    context: str = "latest-step",
    tokenizer: Any = None,
    max_prompt_tokens: int | None = None,
    page_format: str = "compact",
) -> Any:
    """A ``datasets.Dataset`` of conversational prompts with the gold action per row.

    Columns: ``prompt`` (chat messages), ``gold_action`` (action JSON), ``session_id``, ``step``
    and ``page_type`` (the state's ``meta["page_type"]``, e.g. ``search`` on synthetic data;
    ``""`` where the data has none).

    Raises:
        ValueError: no states.
    """
    from datasets import Dataset

    from shop_env.prompt import build_messages

    if not states:
        raise ValueError("GRPO needs at least one state: the training split is empty")
    rows: dict[str, list[Any]] = {"prompt": [], "gold_action": [], "session_id": [], "step": [], "page_type": []}
    for state in states:
        messages = build_messages(
            state.observation, context=context, tokenizer=tokenizer, max_prompt_tokens=max_prompt_tokens,
            page_format=page_format,
        )
        rows["prompt"].append([{"role": m["role"], "content": m["content"]} for m in messages])
        rows["gold_action"].append(state.gold.to_json())
        rows["session_id"].append(str(state.session_id))
        rows["step"].append(int(state.step))
        rows["page_type"].append(str(state.meta.get("page_type") or ""))
    return Dataset.from_dict(rows)


def grpo_args(config: TrainConfig, out_dir: Path, *, progress: bool = True) -> Any:
    """The ``GRPOConfig`` for a run: ``grpo.batch_size`` completions per optimizer step over all
    ``WORLD_SIZE`` processes, ``grpo.micro_batch_size`` per device per forward/backward.

    Rollouts are generated for the fewest micro-steps that hold whole groups
    (``steps_per_generation``), so the KV cache of one generation call stays small when the
    micro-batch is 1.
    """
    from trl import GRPOConfig

    from training.batching import generation_steps
    from training.precision import default_device, resolve_precision

    g = config.grpo
    plan = config.batch_plans()["grpo"]
    cuda = default_device() == "cuda"
    precision = resolve_precision(config.precision)
    return GRPOConfig(
        output_dir=str(out_dir / CHECKPOINTS),
        max_steps=g.steps,
        learning_rate=g.learning_rate,
        per_device_train_batch_size=plan.per_device,
        gradient_accumulation_steps=plan.accumulation,
        steps_per_generation=generation_steps(plan, g.num_generations),
        num_generations=g.num_generations,
        temperature=g.temperature,
        top_p=g.top_p,
        beta=g.kl_beta,
        # Pinned, not left to the installed TRL's defaults (they changed across releases):
        # token-mean loss over the batch and group-std advantages, as verl's GRPO does.
        loss_type=g.loss_type,
        # A std floor rescales TRL's centred (unscaled) advantages itself: see floored_group_advantages.
        scale_rewards="none" if g.advantage_std_floor > 0 else g.scale_rewards,
        max_completion_length=g.max_completion_tokens,
        logging_steps=1,
        save_strategy="steps",
        save_steps=g.save_steps,
        save_total_limit=2,  # resume needs only the newest; a 3B checkpoint with optimizer is ~36 GB
        report_to="none",
        seed=config.seed,
        data_seed=config.seed,
        use_cpu=not cuda,
        bf16=precision == "bf16",  # autocast with float32 master weights, on CPU as on GPU
        disable_tqdm=not progress,
        dataloader_num_workers=0,
        activation_checkpointing=g.gradient_checkpointing,  # pays off for big models on GPU only
        log_completions=False,
    )


def floored_group_advantages(centred: Any, group_size: int, floor: float) -> Any:
    """Group-normalised advantages with a floor on the divisor.

    TRL's ``scale_rewards: group`` divides each group's centred rewards by ``std + 1e-4``.
    When a group's rewards differ only by self-certainty (a few hundredths), that turns
    the tie-break into unit-size advantages, as strong as a right-versus-wrong answer. Here
    the divisor is ``max(std, floor)``: groups spread wider than ``floor`` are normalised
    exactly as before, narrower ones keep advantages below ``spread / floor``.

    Args:
        centred: ``reward - group mean`` per completion (TRL's advantages under
            ``scale_rewards: none``), consecutive ``group_size`` entries per group.
        group_size: completions per prompt (``num_generations``).
        floor: the smallest divisor, in reward units (> 0).

    Returns:
        A tensor of the same shape: ``centred / max(group std, floor)`` (std with
        Bessel's correction, as TRL's).

    Raises:
        ValueError: ``floor`` <= 0, or a length that is not whole groups.
    """
    if not floor > 0:
        raise ValueError(f"floor must be > 0, got {floor}")
    if group_size < 2 or centred.numel() % group_size:
        raise ValueError(f"{centred.numel()} advantages are not whole groups of {group_size}")
    groups = centred.reshape(-1, group_size)
    std = groups.std(dim=1, keepdim=True)  # centred: the group mean is already 0
    return (groups / std.clamp(min=floor)).reshape(centred.shape)


def _trainer_class(std_floor: float) -> type:
    """TRL's ``GRPOTrainer``, or with ``std_floor`` > 0 a subclass that rescales each
    generation batch's advantages by :func:`floored_group_advantages`."""
    from trl import GRPOTrainer

    if std_floor <= 0:
        return GRPOTrainer

    class FlooredStdGRPOTrainer(GRPOTrainer):
        def _generate_and_score_completions(self, inputs: Any) -> Any:
            out = super()._generate_and_score_completions(inputs)
            # Whole groups arrive together: the generation batch is sampled group by group
            # and split into micro-batches (and shuffled) only after this call.
            out["advantages"] = floored_group_advantages(out["advantages"], self.num_generations, std_floor)
            return out

    return FlooredStdGRPOTrainer


def run_grpo(
    config: TrainConfig,
    model: Any,
    tokenizer: Any,
    states: Sequence[Any],
    out_dir: str | os.PathLike[str],
    *,
    resume: bool = False,
    progress: bool = True,
    callbacks: Sequence[Any] = (),
    compact_lm_head: bool = True,
) -> Path:
    """Train ``model`` with GRPO on ``states``; returns the directory of the final model.

    Args:
        config: the run config (``grpo``, ``reward``, ``data`` sections are used).
        model: the policy (a transformers causal LM); trained in place.
        tokenizer: its tokenizer (with a chat template).
        states: the training states.
        out_dir: where ``checkpoints/``, ``metrics.jsonl`` and ``final/`` go.
        resume: continue from the newest checkpoint in ``out_dir`` if there is one.
        progress: show progress bars.
        callbacks: extra ``TrainerCallback`` objects.
        compact_lm_head: score only completion positions through TRL's fused LM head on
            CPU as well (:func:`training.lm_head.trl_scores_completions_only`); False
            keeps TRL's all-positions CPU path (``benchmarks/train_throughput.py``
            times both).

    Raises:
        ValueError: no states, or a bad reward config.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # The trainer builds its frozen KL reference from the policy's name_or_path, so the
    # policy must exist on disk: save the starting weights when they do not.
    source = str(getattr(model.config, "_name_or_path", "") or "")
    if config.grpo.kl_beta and not (source and Path(source).is_dir()):
        init_dir = out / "init"
        model.save_pretrained(init_dir)
        tokenizer.save_pretrained(init_dir)
        model.config._name_or_path = str(init_dir)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    dataset = build_grpo_dataset(
        states, context=config.data.context, tokenizer=tokenizer, max_prompt_tokens=config.data.max_prompt_tokens,
        page_format=config.data.page_format,
    )
    from training.precision import resolve_precision

    reward_config = config.reward_config()
    recorder = GenerationCertainty(reward_config.self_certainty_variant,
                                   reward_config.self_certainty_temperature or config.grpo.temperature)
    reward = ShopR1Reward(reward_config, tokenizer, chunk_size=config.grpo.self_certainty_chunk,
                          precision=resolve_precision(config.precision), temperature=config.grpo.temperature,
                          recorder=recorder if reward_config.use_self_certainty else None,
                          rollout_log=out / ROLLOUTS_FILE)
    metrics_path = out / METRICS_FILE
    checkpoint = last_checkpoint(out / CHECKPOINTS) if resume else None
    for log_path in (metrics_path, out / ROLLOUTS_FILE):
        if checkpoint is not None:
            truncate_metrics(log_path, int(checkpoint.name.split("-")[-1]))
        elif log_path.exists():
            log_path.unlink()  # a fresh run starts fresh logs
    trainer = _trainer_class(config.grpo.advantage_std_floor)(
        model=model,
        reward_funcs=[reward],
        args=grpo_args(config, out, progress=progress),
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[host_memory_callback(), metrics_callback(metrics_path, summary=False), *callbacks],
    )
    # Self-certainty reads the policy the trainer is optimising (no second copy), from the
    # logits it samples the rollout with where it can (no second forward pass).
    reward.attach(lambda: trainer.model)
    # TRL repeats each prompt num_generations times in one generate call: prefill it once.
    # Installed first, so the certainty recorder (installed next) wraps it.
    with sharing_repeated_prompts(trainer.model) if config.grpo.share_prompt_prefill else nullcontext():
        if reward.recorder is not None:
            reward.recorder.install(trainer.model)
        try:
            with trl_scores_completions_only() if compact_lm_head else nullcontext():
                trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint is not None else None)
        finally:
            if reward.recorder is not None:
                reward.recorder.uninstall()
    final = out / FINAL_DIR
    trainer.save_model(str(final))
    tokenizer.save_pretrained(final)
    from shop_env.prompt_settings import PromptSettings

    PromptSettings(config.data.context, config.data.max_history, config.data.max_prompt_tokens,
                   page_format=config.data.page_format).save(final)
    (out / "reward_errors.json").write_text(
        json.dumps({"errors": reward.errors, "self_certainty_sources": reward.certainty_sources}), encoding="utf-8")
    return final
