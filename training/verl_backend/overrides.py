"""A Shop-R1 :class:`~training.config.TrainConfig` as verl Hydra overrides (no verl import).

:func:`grpo_overrides` maps the run onto verl's ``ppo_trainer`` config (GRPO with the
Shop-R1 reward entry point and trainer); :func:`sft_overrides` onto ``sft_trainer_engine``
(the multi-turn SFT cold start). The key-by-key table with the paper's settings is in
docs/verl.md. Both return ``key=value`` strings in a fixed order, so a dry run prints the
same plan every time and tests can read it back with :func:`parse_overrides`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REWARD_FN_PATH = Path(__file__).resolve().parent / "reward.py"
REWARD_FN_NAME = "compute_score"
TRAINER_MODE = "shop_r1_sync"  # registered by training.verl_backend.verl_trainer
SETUP_HOOK = "training.verl_backend.verl_trainer.setup_worker"
#: Used for ``data.max_prompt_length`` when the preset sets no prompt budget.
DEFAULT_MAX_PROMPT_TOKENS = 8192
#: Room for the chat template around a prompt counted without it (ceil(chars/4) estimate).
TEMPLATE_MARGIN_TOKENS = 64
PROJECT_NAME = "shop_r1"
#: Logical CPUs a local Ray is started with at least. verl's TransferQueue places 8 storage
#: actors and a controller before any worker; on a Ray that counts only the machine's 2
#: cores they wait for CPUs forever and the entry point hangs without a message.
MIN_LOCAL_RAY_CPUS = 16


def local_ray_cpus(machine_cpus: int | None = None) -> int:
    """``ray_kwargs.ray_init.num_cpus`` for a Ray that verl starts on this machine:
    the machine's CPU count (``os.cpu_count()`` by default), at least :data:`MIN_LOCAL_RAY_CPUS`."""
    import os

    return max(MIN_LOCAL_RAY_CPUS, machine_cpus if machine_cpus is not None else (os.cpu_count() or 1))


def default_attn_implementation() -> str | None:
    """``sdpa`` where flash-attn is not importable, else None (verl's ``flash_attention_2``).

    verl loads every model with ``flash_attention_2`` unless told otherwise, and
    ``verl[vllm]`` does not install flash-attn: without it the first worker dies on load.
    """
    import importlib.util

    return None if importlib.util.find_spec("flash_attn") is not None else "sdpa"


@dataclass(frozen=True)
class DataFiles:
    """The parquet files a verl run reads (written by :mod:`training.verl_backend.export`)."""

    train: Path
    test: Path
    sft_train: Path
    sft_test: Path

    @classmethod
    def under(cls, folder: str | Path) -> DataFiles:
        """The export's file names inside ``folder`` (absolute: Ray workers run elsewhere)."""
        root = Path(folder).expanduser().resolve()
        return cls(root / "train.parquet", root / "test.parquet", root / "sft_train.parquet", root / "sft_test.parquet")


def hydra_value(value: Any) -> str:
    """Format a Python value for a Hydra command-line override.

    Strings are quoted when Hydra's grammar would otherwise split or reinterpret them
    (spaces, ``,=[]{}()'"``, ``$``, ``:`` and the like, or words it reads as bool/null/number).

    Raises:
        TypeError: an unsupported type.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError(f"cannot pass a non-finite float {value!r} to Hydra")
        return repr(value)
    if isinstance(value, (str, Path)):
        text = str(value)
        if re.fullmatch(r"[A-Za-z0-9_./@+-]+", text) and not re.fullmatch(
            r"(?i)true|false|null|none|nan|inf|[-+]?\d[\d_]*(\.\d*)?(e[-+]?\d+)?", text
        ):
            return text
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(hydra_value(v) for v in value) + "]"
    raise TypeError(f"cannot pass {type(value).__name__} {value!r} to Hydra")


def override(key: str, value: Any) -> str:
    """``key=value`` with the value formatted by :func:`hydra_value`."""
    return f"{key}={hydra_value(value)}"


def parse_overrides(items: Sequence[str]) -> dict[str, str]:
    """Read ``key=value`` overrides back into a dict of raw value strings (``+`` kept in keys)."""
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key] = value
    return out


def prompt_budget(config: Any) -> int:
    """``data.max_prompt_length``: the preset's prompt budget plus template room (or a default)."""
    budget = config.data.max_prompt_tokens
    return (budget or DEFAULT_MAX_PROMPT_TOKENS) + TEMPLATE_MARGIN_TOKENS


def prompts_per_step(config: Any) -> int:
    """verl counts prompts (``data.train_batch_size``); Shop-R1 presets count completions."""
    return max(1, config.grpo.batch_size // config.grpo.num_generations)


#: TRL ``loss_type`` -> verl ``loss_agg_mode``: the same aggregation on both backends.
LOSS_AGG_MODE = {"dapo": "token-mean", "bnpo": "token-mean", "grpo": "seq-mean-token-mean",
                 "dr_grpo": "seq-mean-token-sum-norm"}


def grpo_overrides(
    config: Any,
    *,
    model_path: str,
    files: DataFiles,
    out_dir: str | Path,
    nnodes: int = 1,
    n_gpus_per_node: int = 1,
    reward_config: Mapping[str, Any] | None = None,
    ray_cpus: int | None = None,
    attn_implementation: str | None = None,
    precision: str | None = None,
) -> list[str]:
    """verl ``ppo_trainer`` overrides for the GRPO stage of a Shop-R1 run.

    Args:
        config: the resolved :class:`training.config.TrainConfig`.
        model_path: the policy to start from (hub id, or the SFT stage's HF export).
        files: the exported parquet files.
        out_dir: the run's verl folder (checkpoints under ``out_dir/checkpoints``).
        nnodes, n_gpus_per_node: the cluster shape.
        reward_config: every RewardConfig field (``RewardConfig.to_dict()``); passed to
            ``compute_score`` and the trainer as ``reward_kwargs``. None: ``config.reward``.
        ray_cpus: ``ray_kwargs.ray_init.num_cpus`` for a Ray verl starts itself
            (:func:`local_ray_cpus`); None leaves it to Ray (and must, on a running cluster).
        attn_implementation: the policy's attention kernel (``sdpa`` without flash-attn,
            :func:`default_attn_implementation`); None keeps verl's ``flash_attention_2``.
        precision: the resolved precision (:func:`training.precision.resolve_precision`):
            ``"fp32"`` makes FSDP compute and vLLM roll out in float32; None or ``"bf16"``
            keep verl's bf16 mixed precision.

    Returns:
        ``key=value`` strings; keys that verl's config lacks carry Hydra's ``+`` prefix.
    """
    grpo = config.grpo
    prompt_len = prompt_budget(config)
    response_len = config.grpo.max_completion_tokens
    batch_prompts = prompts_per_step(config)
    # Dynamic batching packs sequences up to this many tokens per GPU; it must fit one sequence.
    max_tokens_per_gpu = max(16384, prompt_len + response_len)
    out = Path(out_dir).expanduser().resolve()
    items = [
        override("algorithm.adv_estimator", "grpo"),
        override("algorithm.use_kl_in_reward", False),
        override("algorithm.norm_adv_by_std_in_grpo", grpo.scale_rewards != "none"),
        override("actor_rollout_ref.actor.loss_agg_mode", LOSS_AGG_MODE[grpo.loss_type]),
        override("data.train_files", [str(files.train)]),
        override("data.val_files", [str(files.test)]),
        override("data.prompt_key", "prompt"),
        override("data.reward_fn_key", "data_source"),
        override("data.max_prompt_length", prompt_len),
        override("data.max_response_length", response_len),
        override("data.train_batch_size", batch_prompts),
        override("data.filter_overlong_prompts", True),
        override("data.truncation", "error"),
        override("data.seed", config.seed),
        override("actor_rollout_ref.model.path", model_path),
        *_attn_overrides("actor_rollout_ref.model", attn_implementation),
        override("actor_rollout_ref.model.use_remove_padding", True),
        override("actor_rollout_ref.model.enable_gradient_checkpointing", True),
        override("actor_rollout_ref.actor.optim.lr", float(grpo.learning_rate)),
        override("actor_rollout_ref.actor.ppo_mini_batch_size", batch_prompts),
        override("actor_rollout_ref.actor.use_dynamic_bsz", True),
        override("actor_rollout_ref.actor.ppo_max_token_len_per_gpu", max_tokens_per_gpu),
        override("actor_rollout_ref.actor.use_kl_loss", grpo.kl_beta > 0),
        override("actor_rollout_ref.actor.kl_loss_coef", float(grpo.kl_beta)),
        override("actor_rollout_ref.actor.kl_loss_type", "low_var_kl"),
        override("actor_rollout_ref.actor.entropy_coeff", 0.0),
        override("actor_rollout_ref.rollout.name", "vllm"),
        override("actor_rollout_ref.rollout.n", grpo.num_generations),
        override("actor_rollout_ref.rollout.temperature", float(grpo.temperature)),
        override("actor_rollout_ref.rollout.top_p", float(grpo.top_p)),
        override("actor_rollout_ref.rollout.tensor_model_parallel_size", 1),
        override("actor_rollout_ref.rollout.gpu_memory_utilization", 0.5),
        override("actor_rollout_ref.rollout.max_model_len", prompt_len + response_len),
        *_precision_overrides("actor_rollout_ref.actor.fsdp_config", precision),
        *_precision_overrides("actor_rollout_ref.ref.fsdp_config", precision),
        *([override("actor_rollout_ref.rollout.dtype", "float32")] if precision == "fp32" else []),
        override("reward.custom_reward_function.path", str(REWARD_FN_PATH)),
        override("reward.custom_reward_function.name", REWARD_FN_NAME),
        override("reward.reward_manager.name", "naive"),
    ]
    reward = dict(config.reward.to_dict() if reward_config is None else reward_config)
    for key in sorted(reward):
        items.append(override(f"+reward.custom_reward_function.reward_kwargs.{key}", reward[key]))
    items += [
        override("trainer.v1.trainer_mode", TRAINER_MODE),
        override("+ray_kwargs.ray_init.runtime_env.worker_process_setup_hook", SETUP_HOOK),
        override("trainer.project_name", PROJECT_NAME),
        override("trainer.experiment_name", config.name),
        override("trainer.logger", ["console"]),
        override("trainer.nnodes", nnodes),
        override("trainer.n_gpus_per_node", n_gpus_per_node),
        override("trainer.total_training_steps", grpo.steps),
        # Every epoch has >= 1 step, so this never stops the run before total_training_steps.
        override("trainer.total_epochs", grpo.steps),
        override("trainer.save_freq", grpo.save_steps),
        override("trainer.test_freq", grpo.save_steps),
        override("trainer.val_before_train", True),
        override("trainer.resume_mode", "auto"),
        override("trainer.default_local_dir", str(out / "checkpoints")),
        # Every checkpoint also keeps a plain HF model (actor/huggingface), which `hf:<dir>`
        # agents and evaluate.py load; FSDP shards alone need verl's model merger first.
        override("actor_rollout_ref.actor.checkpoint.save_contents", ["model", "optimizer", "extra", "hf_model"]),
        # Hydra's outputs/<date>/ folders belong to the run, not to the caller's directory.
        override("hydra.run.dir", str(out / "hydra" / "grpo")),
    ]
    if ray_cpus is not None:
        items.append(override("ray_kwargs.ray_init.num_cpus", int(ray_cpus)))
    return items


def _precision_overrides(fsdp_key: str, precision: str | None) -> list[str]:
    # verl's FSDP default computes in bf16 (param_dtype bf16), which a CPU without
    # AVX512-BF16/AMX only emulates: a bf16 matmul there is ~100x slower than fp32.
    if precision != "fp32":
        return []
    return [override(f"+{fsdp_key}.mixed_precision.{part}", "fp32")
            for part in ("param_dtype", "reduce_dtype", "buffer_dtype")]


def _attn_overrides(model_key: str, attn_implementation: str | None) -> list[str]:
    if attn_implementation is None:
        return []
    return [override(f"+{model_key}.override_config.attn_implementation", attn_implementation)]


def sft_overrides(
    config: Any,
    *,
    model_path: str,
    files: DataFiles,
    out_dir: str | Path,
    nnodes: int = 1,
    n_gpus_per_node: int = 1,
    attn_implementation: str | None = None,
    precision: str | None = None,
) -> list[str]:
    """verl ``sft_trainer_engine`` overrides for the SFT cold start (multi-turn ``messages``).

    The checkpoint keeps a full HF model (``checkpoint.save_contents`` has ``hf_model``) under
    ``out_dir/sft/global_step_<N>/huggingface``, which GRPO then starts from.
    ``attn_implementation`` and ``precision`` are as for :func:`grpo_overrides`.
    """
    sft = config.sft
    max_len = sft.max_seq_tokens
    out = Path(out_dir).expanduser().resolve()
    return [
        override("data.train_files", str(files.sft_train)),
        override("data.val_files", str(files.sft_test)),
        override("data.messages_key", "messages"),
        override("data.train_batch_size", sft.batch_size),
        override("data.max_length", max_len),
        # The export fits chats to the budget by an estimate; cut the tail rather than crash.
        override("data.truncation", "right"),
        override("data.use_dynamic_bsz", True),
        override("data.max_token_len_per_gpu", max(8192, max_len)),
        override("model.path", model_path),
        *_attn_overrides("model", attn_implementation),
        *_precision_overrides("engine", precision),
        override("optim.lr", float(sft.learning_rate)),
        # sft.max_steps sets the stage's length as it does locally (HF's max_steps: the epochs
        # no longer limit it); verl stops at the end of its epochs without a final checkpoint,
        # so the epochs must not run out first: every epoch has >= 1 step.
        override("trainer.total_epochs", sft.max_steps if sft.max_steps else max(1, math.ceil(sft.epochs))),
        override("trainer.total_training_steps", sft.max_steps),
        override("trainer.project_name", PROJECT_NAME),
        override("trainer.experiment_name", f"{config.name}-sft"),
        override("trainer.logger", ["console"]),
        override("trainer.nnodes", nnodes),
        override("trainer.n_gpus_per_node", n_gpus_per_node),
        override("trainer.seed", config.seed),
        override("trainer.default_local_dir", str(out / "sft")),
        override("trainer.resume_mode", "auto"),
        override("checkpoint.save_contents", ["model", "optimizer", "extra", "hf_model"]),
        override("hydra.run.dir", str(out / "hydra" / "sft")),
    ]


def merge_overrides(plan: Sequence[str], extra: Sequence[str]) -> list[str]:
    """``plan`` with ``extra`` applied: an extra override of a key the plan sets replaces that
    item in place (keeping the plan's ``+`` when the extra has none, so the key still exists
    for Hydra); the other extras are appended in order.

    Raises:
        ValueError: an item that is not ``key=value``.
    """
    items = list(plan)
    where = {item.partition("=")[0].lstrip("+~"): i for i, item in enumerate(items)}
    for item in extra:
        key, sep, value = item.partition("=")
        bare = key.lstrip("+~")
        if not sep or not bare:
            raise ValueError(f"a verl override must be key=value, got {item!r}")
        if bare in where:
            i = where[bare]
            prefix = key[: len(key) - len(bare)] or items[i][: len(items[i]) - len(items[i].lstrip("+~"))]
            items[i] = f"{prefix}{bare}={value}"
        else:
            where[bare] = len(items)
            items.append(item)
    return items


def with_required_overrides(argv: Sequence[str]) -> list[str]:
    """``argv`` plus the two overrides that wire in Shop-R1's trainer, where absent.

    Lets ``python -m training.verl_backend.entry`` be run by hand with any verl overrides.
    """
    items = list(argv)
    keys = {item.partition("=")[0].lstrip("+~") for item in items}
    if "trainer.v1.trainer_mode" not in keys:
        items.append(override("trainer.v1.trainer_mode", TRAINER_MODE))
    if "ray_kwargs.ray_init.runtime_env.worker_process_setup_hook" not in keys:
        items.append(override("+ray_kwargs.ray_init.runtime_env.worker_process_setup_hook", SETUP_HOOK))
    return items
